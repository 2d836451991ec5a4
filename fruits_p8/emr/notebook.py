"""A cluster a notebook can attach to (`emr plan|run --notebook`): EMR Studio's applications,
the bootstrap's Python as the kernels', and a cluster that waits for the notebook after its
steps (until the idle timeout ends it)."""

from __future__ import annotations

# EMR Studio attaches Workspaces (notebooks) through the Jupyter Enterprise Gateway, whose
# PySpark kernels start Spark sessions through Livy: both must be on the cluster.
NOTEBOOK_APPLICATIONS = ("JupyterEnterpriseGateway", "Livy")
# A kernel's Spark driver on the primary node, as the step's: the executor sizing leaves a core
# node room for a client-mode application master (896 MB), not for a cluster-mode driver.
LIVY_CLIENT_MODE = {"Classification": "livy-conf",
                    "Properties": {"livy.spark.deploy-mode": "client"}}


def add_notebook(request: dict) -> None:
    """Add the applications and keep the cluster up once its steps are done. The kernels'
    Spark sessions read spark-env/spark-defaults, so they run the bootstrap's venv Python
    with the package installed, like the step."""
    names = {app["Name"] for app in request["Applications"]}
    request["Applications"] += [{"Name": name} for name in NOTEBOOK_APPLICATIONS
                                if name not in names]
    request["Instances"]["KeepJobFlowAliveWhenNoSteps"] = True
    request["Configurations"].append(LIVY_CLIENT_MODE)


def notebook_note(per_hour: float, idle_timeout_s: int) -> str:
    """What leaving a notebook cluster up costs, and what ends it."""
    return (f"notebook cluster: it stays up after its steps for EMR Studio (attach a Workspace "
            f"to it; kernels run the bootstrap's Python with fruits_p8), at ${per_hour:.3f}/h "
            f"while up (${24 * per_hour:.2f} a day); the auto-termination still ends it after "
            f"{idle_timeout_s / 3600:g} h with no step, notebook kernel or Livy session "
            "active, or terminate it yourself (`fruits-p8 emr terminate CLUSTER_ID`)")
