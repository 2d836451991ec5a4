"""S3 through boto3: clients, listing, reading and writing objects, and errors in one line.

Credentials come only from boto3's standard chain (environment, ~/.aws, instance profile)
and are never logged. The endpoint can point at any S3-compatible store (`--endpoint-url`,
or boto3's own AWS_ENDPOINT_URL).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from fruits_p8.errors import StorageError
from fruits_p8.io.glob import name_matches
from fruits_p8.io.paths import Location
from fruits_p8.schema import DEFAULT_REGION


@dataclass(frozen=True)
class S3Settings:
    """Where S3 is: region and optional endpoint. No credentials here, by design."""

    region: str = DEFAULT_REGION
    endpoint_url: str | None = None

    def client(self):
        """A boto3 S3 client (thread-safe) with retries suited to many small objects.

        Each client gets its own Session: boto3's default session is shared, not thread-safe
        to create clients from, and would keep credentials that have since changed.
        """
        import boto3
        from botocore.config import Config

        config = Config(retries={"max_attempts": 8, "mode": "adaptive"},
                        max_pool_connections=64)
        return boto3.session.Session().client(
            "s3", region_name=self.region, endpoint_url=self.endpoint_url, config=config
        )


@dataclass(frozen=True)
class S3Object:
    key: str
    size: int
    etag: str
    modified: datetime


def storage_error(exc: BaseException, uri: Location | str,
                  settings: S3Settings) -> StorageError:
    """Turn a boto3/botocore exception into a one-line StorageError that says what to do."""
    where = uri if isinstance(uri, Location) else Location.parse(uri)
    bucket, uri = (where.authority or uri), where.text() if where.is_s3 else uri
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
        ReadTimeoutError,
    )

    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return StorageError("no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
                            "AWS_SECRET_ACCESS_KEY, or run where an instance role applies")
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError |
                  ConnectionClosedError):
        return _unreachable(uri, str(exc))
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchBucket",) or (code == "404" and "HeadBucket" in str(exc)):
            return StorageError(f"bucket {bucket} does not exist (use --create-bucket with "
                                "upload, or check the name)")
        if code in ("AccessDenied", "403", "AllAccessDisabled", "InvalidAccessKeyId",
                    "SignatureDoesNotMatch") or status == 403:
            return StorageError(f"access denied to {uri} ({code}): check the credentials "
                                "and the bucket policy")
        if code in ("PermanentRedirect", "AuthorizationHeaderMalformed",
                    "IllegalLocationConstraintException") or status == 301:
            region = error.get("Region") or exc.response.get("ResponseMetadata", {}).get(
                "HTTPHeaders", {}).get("x-amz-bucket-region")
            hint = f"it is in {region}" if region else "it is in another region"
            return StorageError(f"bucket {bucket} is not in {settings.region} ({hint}): "
                                "pass --region")
        return StorageError(f"S3 refused a request on {uri}: {code} {error.get('Message', '')}"
                            .strip())
    return StorageError(f"S3 request on {uri} failed: {exc}")


# botocore's names for an endpoint that does not answer (as a Spark task's traceback gives them)
UNREACHABLE = ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
               "ConnectionClosedError", "ProxyConnectionError")


def _unreachable(uri: str, detail: str) -> StorageError:
    return StorageError(f"cannot reach the S3 endpoint for {uri} ({detail}): check "
                        "--endpoint-url and the network, then run the command again")


def storage_error_text(name: str, message: str, uri: str) -> StorageError:
    """storage_error for a failure known only by its text: a boto3 error raised in a Spark
    task arrives as its class name and message inside the task's traceback."""
    short = name.rsplit(".", 1)[-1]
    detail = message.strip().splitlines()[0] if message.strip() else short
    if short in UNREACHABLE:
        return _unreachable(uri, detail)
    if short in ("NoCredentialsError", "PartialCredentialsError"):
        return StorageError("no AWS credentials found where the Spark tasks run: set "
                            "AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run "
                            "where an instance role applies")
    return StorageError(f"an S3 request on {uri} failed in a Spark task ({short}: {detail}); "
                        "check the bucket, the credentials and --endpoint-url, then run again")


def list_prefix(client, bucket: str, prefix: str) -> Iterator[S3Object]:
    """Every object whose key starts with `prefix` (a raw prefix, not a folder)."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield S3Object(item["Key"], int(item["Size"]), item["ETag"].strip('"'),
                           item["LastModified"])


def list_objects(client, location: Location, glob: str | None = None) -> Iterator[S3Object]:
    """Every object under s3://bucket/prefix/ (recursively) whose file name matches `glob`."""
    prefix = location.key
    for obj in list_prefix(client, location.bucket, prefix + "/" if prefix else ""):
        if obj.key.endswith("/"):
            continue
        if glob is None or name_matches(obj.key.rsplit("/", 1)[-1], glob):
            yield obj


# EMRFS marks each directory it creates with an empty object named "<dir>_$folder$".
FOLDER_MARKER = "_$folder$"


def is_folder_marker(key: str) -> bool:
    """Whether `key` is an EMRFS directory marker: no data, never part of an output."""
    return key.endswith(FOLDER_MARKER)


def strip_folder_markers(keys: Iterable[str]) -> list[str]:
    """`keys` without EMRFS directory markers, to judge what an output prefix holds."""
    return [k for k in keys if not is_folder_marker(k)]


def folder_marker(prefix: str) -> str:
    """The marker EMRFS leaves for the directory `prefix` (a key prefix, no trailing /)."""
    return prefix.rstrip("/") + FOLDER_MARKER


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def check_bucket(client, bucket: str, settings: S3Settings) -> None:
    """Raise a one-line StorageError unless the bucket exists and is reachable."""
    try:
        client.head_bucket(Bucket=bucket)
    except Exception as exc:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in (
            "404", "NoSuchBucket", "NotFound"
        ):
            raise StorageError(f"bucket {bucket} does not exist (use --create-bucket with "
                               "upload, or check the name)") from None
        raise storage_error(exc, f"s3://{bucket}", settings) from None


def create_bucket(client, bucket: str, settings: S3Settings) -> bool:
    """Create a private, encrypted bucket in the configured region; False if it was ours."""
    from botocore.exceptions import ClientError

    request = {"Bucket": bucket}
    if settings.region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": settings.region}
    try:
        client.create_bucket(**request)
        created = True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise storage_error(exc, f"s3://{bucket}", settings) from None
        created = False
    client.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True,
            "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
        },
    )
    client.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    return created


def download(settings: S3Settings, location: Location, folder) -> object:
    """Fetch s3://bucket/key into `folder` (kept as a cache: same size -> no new download)."""
    from pathlib import Path

    bucket, key, uri = location.bucket, location.key, location.text()
    target = Path(folder) / bucket / key
    client = settings.client()
    try:
        head = client.head_object(Bucket=bucket, Key=key)
        if not target.is_file() or target.stat().st_size != head["ContentLength"]:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(target.suffix + ".part")
            client.download_file(bucket, key, str(tmp))
            tmp.replace(target)
    except Exception as exc:
        raise storage_error(exc, uri, settings) from None
    return target
