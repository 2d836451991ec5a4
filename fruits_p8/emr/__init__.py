"""AWS EMR: plan (pure: requests and cost from the data files in emr/) and run (boto3)."""
