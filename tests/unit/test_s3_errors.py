"""Every S3 failure a user can cause becomes one line that says what to do."""

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from fruits_p8.errors import StorageError
from fruits_p8.io.glob import name_matches
from fruits_p8.io.s3 import S3Settings, storage_error

SETTINGS = S3Settings(region="eu-west-3")


def client_error(code: str, status: int, message: str = "", region: str | None = None):
    response = {"Error": {"Code": code, "Message": message},
                "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}}}
    if region:
        response["Error"]["Region"] = region
    return ClientError(response, "GetObject")


@pytest.mark.parametrize(
    "exc,expected",
    [
        (NoCredentialsError(), "no AWS credentials found"),
        (client_error("NoSuchBucket", 404), "bucket data does not exist"),
        (client_error("AccessDenied", 403, "Access Denied"), "access denied to s3://data/x"),
        (client_error("InvalidAccessKeyId", 403), "check the credentials"),
        (client_error("PermanentRedirect", 301, region="us-east-1"),
         "bucket data is not in eu-west-3 (it is in us-east-1): pass --region"),
        (client_error("AuthorizationHeaderMalformed", 400), "not in eu-west-3"),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "cannot reach"),
        (client_error("SlowDown", 503, "Please reduce your request rate"), "SlowDown"),
    ],
)
def test_errors_are_one_clear_line(exc, expected):
    error = storage_error(exc, "s3://data/x", SETTINGS)
    assert isinstance(error, StorageError) and error.exit_code == 7
    assert expected in str(error)
    assert "\n" not in str(error)


def test_hadoop_style_globs():
    assert name_matches("b2", "{a,b}{1,2}") and not name_matches("c1", "{a,b}{1,2}")
    assert name_matches("3_100.jpg", "*.jpg")
    assert not name_matches("3_100.JPG", "*.jpg")  # case-sensitive, as Hadoop's filter
    assert name_matches("x.jpeg", "*.{jpg,jpeg}")
    assert not name_matches("x.png", "*.{jpg,jpeg}")
