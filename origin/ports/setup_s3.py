"""`imagehost setup`: the S3 side of a deployment, idempotent.

    bucket          created if missing, with CORS so browsers can POST uploads to it
    queue           SQS queue for upload events (named after the bucket unless
                    IMAGEHOST_SQS_QUEUE_URL names one)
    notification    s3:ObjectCreated:* under {prefix}uploads/ → the queue
"""
from __future__ import annotations

import json

import boto3
from botocore.exceptions import ClientError

from origin.ports.queue_sqs import UPLOAD_MARKER, queue_name


def _client(service: str, settings):
    endpoint = settings.s3_endpoint_url if service == "s3" else settings.sqs_endpoint_url or settings.s3_endpoint_url
    return boto3.client(service, region_name=settings.s3_region, endpoint_url=endpoint or None)


def setup(settings) -> dict:
    s3, sqs = _client("s3", settings), _client("sqs", settings)
    bucket = settings.s3_bucket
    prefix = settings.s3_prefix.strip("/") + "/" if settings.s3_prefix.strip("/") else ""  # as S3Store does
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        extra = {} if settings.s3_region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": settings.s3_region}}
        s3.create_bucket(Bucket=bucket, **extra)
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [{
        "AllowedMethods": ["POST", "PUT"], "AllowedOrigins": ["*"], "AllowedHeaders": ["*"], "MaxAgeSeconds": 3600}]})
    queue_url = settings.sqs_queue_url or sqs.create_queue(
        QueueName=queue_name(settings), Attributes={"VisibilityTimeout": str(settings.job_lease_seconds)})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sqs:SendMessage",
        "Resource": arn, "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}}}]}
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [{
        "QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix + UPLOAD_MARKER}]}}}]})
    return {"bucket": bucket, "queue_url": queue_url, "events_prefix": prefix + UPLOAD_MARKER}
