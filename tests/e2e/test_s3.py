"""S3 front end, driven by real clients: boto3 (Debian's 1.26 running these tests, and the image's
newest botocore in a subprocess), AWS CLI v2 (Debian) and AWS CLI v1 (the image's pyenv `aws`).
"""
import glob
import hashlib
import io
import os
import socket
import subprocess
import textwrap
import urllib.request

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

MIB = 1024 * 1024
SMALL_PARTS = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def newest_python():
    """The image's pyenv Python with the newest boto3, or None."""
    for python in sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/*/bin/python3"))):
        if subprocess.run([python, "-c", "import boto3"], capture_output=True).returncode == 0:
            return python
    return None


def aws_cli_v1():
    for aws in sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/*/bin/aws"))):
        return aws
    return None


# --- boto3 -----------------------------------------------------------------------------------

def test_bucket_lifecycle_and_errors(s3):
    s3.create_bucket(Bucket="alpha")
    s3.create_bucket(Bucket="beta",
                     CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["alpha", "beta"]
    s3.head_bucket(Bucket="alpha")

    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="alpha")
    assert error_code(e) == "BucketAlreadyOwnedByYou"
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket="missing-bucket")
    assert error_code(e) == "404"
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket="Bad_Name")
    assert error_code(e) == "InvalidBucketName"

    s3.put_object(Bucket="alpha", Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket="alpha")
    assert error_code(e) == "BucketNotEmpty"
    s3.delete_object(Bucket="alpha", Key="k")
    s3.delete_bucket(Bucket="alpha")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["beta"]


def test_object_round_trip_with_metadata_ranges_and_conditions(s3):
    s3.create_bucket(Bucket="objs")
    put = s3.put_object(Bucket="objs", Key="dir/hello.txt", Body=b"0123456789",
                        ContentType="text/plain", Metadata={"color": "blue"})
    assert put["ETag"] == '"%s"' % hashlib.md5(b"0123456789").hexdigest()

    got = s3.get_object(Bucket="objs", Key="dir/hello.txt")
    assert got["Body"].read() == b"0123456789"
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"color": "blue"}
    assert got["ETag"] == put["ETag"]

    head = s3.head_object(Bucket="objs", Key="dir/hello.txt")
    assert head["ContentLength"] == 10

    part = s3.get_object(Bucket="objs", Key="dir/hello.txt", Range="bytes=2-4")
    assert part["Body"].read() == b"234"
    assert part["ContentRange"] == "bytes 2-4/10"
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert s3.get_object(Bucket="objs", Key="dir/hello.txt",
                         Range="bytes=-3")["Body"].read() == b"789"

    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="objs", Key="dir/hello.txt", Range="bytes=50-")
    assert error_code(e) == "InvalidRange"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="objs", Key="missing")
    assert error_code(e) == "NoSuchKey"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="no-such-bucket", Key="k")
    assert error_code(e) == "NoSuchBucket"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket="objs", Key="missing")
    assert error_code(e) == "404"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="objs", Key="dir/hello.txt", IfNoneMatch=put["ETag"])
    assert error_code(e) == "304"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="objs", Key="dir/hello.txt", IfMatch='"0000"')
    assert error_code(e) == "PreconditionFailed"


def test_content_md5_mismatch_is_bad_digest_and_stores_nothing(s3):
    s3.create_bucket(Bucket="digests")
    import base64
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket="digests", Key="k", Body=b"data", ContentMD5=wrong)
    assert error_code(e) == "BadDigest"
    assert "Contents" not in s3.list_objects_v2(Bucket="digests")


def test_listing_pages_groups_and_encodes_keys(s3):
    s3.create_bucket(Bucket="lists")
    keys = ["a/1", "a/2", "b with space", "c+plus", "d/é/x", "e%percent", "f"]
    for k in keys:
        s3.put_object(Bucket="lists", Key=k, Body=b"x")

    # boto3 asks for encoding-type=url and decodes: odd keys must survive the round trip.
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="lists",
                                                          PaginationConfig={"PageSize": 2})
    listed = [o["Key"] for p in pages for o in p.get("Contents", [])]
    assert listed == keys

    top = s3.list_objects_v2(Bucket="lists", Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["a/", "d/"]
    assert [o["Key"] for o in top["Contents"]] == ["b with space", "c+plus", "e%percent", "f"]

    inner = s3.list_objects_v2(Bucket="lists", Prefix="d/", Delimiter="/")
    assert [p["Prefix"] for p in inner["CommonPrefixes"]] == ["d/é/"]

    after = s3.list_objects_v2(Bucket="lists", StartAfter="c+plus")
    assert [o["Key"] for o in after["Contents"]] == keys[4:]

    v1 = s3.get_paginator("list_objects").paginate(Bucket="lists", Delimiter="/",
                                                   PaginationConfig={"PageSize": 2})
    seen = []
    for page in v1:
        seen += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        seen += [o["Key"] for o in page.get("Contents", [])]
    assert sorted(seen) == sorted(["a/", "d/", "b with space", "c+plus", "e%percent", "f"])


def test_copy_and_batch_delete(s3):
    s3.create_bucket(Bucket="copies")
    s3.put_object(Bucket="copies", Key="src key+1", Body=b"payload", ContentType="text/a",
                  Metadata={"m": "1"})
    s3.copy_object(Bucket="copies", Key="dst", CopySource={"Bucket": "copies", "Key": "src key+1"})
    got = s3.get_object(Bucket="copies", Key="dst")
    assert got["Body"].read() == b"payload"
    assert got["Metadata"] == {"m": "1"}

    s3.copy_object(Bucket="copies", Key="dst2", CopySource="copies/src key+1",
                   MetadataDirective="REPLACE", ContentType="text/b", Metadata={"n": "2"})
    head = s3.head_object(Bucket="copies", Key="dst2")
    assert head["ContentType"] == "text/b"
    assert head["Metadata"] == {"n": "2"}

    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket="copies", Key="x", CopySource={"Bucket": "copies", "Key": "nope"})
    assert error_code(e) == "NoSuchKey"

    deleted = s3.delete_objects(Bucket="copies", Delete={
        "Objects": [{"Key": "dst"}, {"Key": "dst2"}, {"Key": "never-existed"}]})
    assert sorted(d["Key"] for d in deleted["Deleted"]) == ["dst", "dst2", "never-existed"]
    quiet = s3.delete_objects(Bucket="copies",
                              Delete={"Objects": [{"Key": "src key+1"}], "Quiet": True})
    assert "Deleted" not in quiet
    assert "Contents" not in s3.list_objects_v2(Bucket="copies")


def test_multipart_upload_download_and_abort(s3, tmp_path):
    s3.create_bucket(Bucket="multi")
    data = os.urandom(12 * MIB + 123)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    s3.upload_file(str(src), "multi", "big.bin", Config=SMALL_PARTS)
    head = s3.head_object(Bucket="multi", Key="big.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].endswith('-3"')

    dst = tmp_path / "back.bin"
    s3.download_file("multi", "big.bin", str(dst), Config=SMALL_PARTS)
    assert dst.read_bytes() == data

    upload = s3.create_multipart_upload(Bucket="multi", Key="abandoned")
    s3.upload_part(Bucket="multi", Key="abandoned", UploadId=upload["UploadId"], PartNumber=1,
                   Body=b"part")
    parts = s3.list_parts(Bucket="multi", Key="abandoned", UploadId=upload["UploadId"])
    assert [p["Size"] for p in parts["Parts"]] == [4]
    uploads = s3.list_multipart_uploads(Bucket="multi")
    assert [u["Key"] for u in uploads["Uploads"]] == ["abandoned"]
    s3.abort_multipart_upload(Bucket="multi", Key="abandoned", UploadId=upload["UploadId"])
    assert "Uploads" not in s3.list_multipart_uploads(Bucket="multi")
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket="multi", Key="abandoned", UploadId=upload["UploadId"])
    assert error_code(e) == "NoSuchUpload"


def test_presigned_get_url(s3):
    s3.create_bucket(Bucket="presign")
    s3.put_object(Bucket="presign", Key="file.txt", Body=b"shared")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "presign", "Key": "file.txt"})
    with urllib.request.urlopen(url) as response:
        assert response.read() == b"shared"


NEWEST_BOTO3_SCRIPT = textwrap.dedent("""
    import io, os, sys
    import boto3, botocore.config
    from boto3.s3.transfer import TransferConfig
    s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                      aws_access_key_id="hearth", aws_secret_access_key="hearth-secret",
                      config=botocore.config.Config(s3={"addressing_style": "path"},
                                                    retries={"max_attempts": 1}))
    s3.create_bucket(Bucket="newest")
    # Current botocore sends a CRC32 with every upload by default and reads it back.
    put = s3.put_object(Bucket="newest", Key="k", Body=b"hello world")
    assert put["ChecksumCRC32"] == "DUoRhQ==", put
    for algorithm in ("CRC32", "SHA1", "SHA256"):
        r = s3.put_object(Bucket="newest", Key=algorithm, Body=b"x" * 1000,
                          ChecksumAlgorithm=algorithm)
        assert "Checksum" + algorithm in r, r
    got = s3.get_object(Bucket="newest", Key="k", ChecksumMode="ENABLED")
    assert got["Body"].read() == b"hello world"
    data = os.urandom(11 * 1024 * 1024)
    cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3.upload_fileobj(io.BytesIO(data), "newest", "mp", Config=cfg)
    out = io.BytesIO()
    s3.download_fileobj("newest", "mp", out, Config=cfg)
    assert out.getvalue() == data
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="newest")["Contents"]]
    assert keys == ["CRC32", "SHA1", "SHA256", "k", "mp"], keys
    s3.delete_objects(Bucket="newest", Delete={"Objects": [{"Key": k} for k in keys]})
    s3.delete_bucket(Bucket="newest")
    print("ok")
""")


def test_newest_boto3_checksums_and_multipart(server):
    python = newest_python()
    if python is None:
        pytest.skip("no pyenv Python with the newest boto3 on this machine")
    proc = subprocess.run([python, "-c", NEWEST_BOTO3_SCRIPT, server.url], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


# --- AWS CLI -----------------------------------------------------------------------------------

def cli_round_trip(server, workdir, aws, bucket):
    big = workdir / "big.bin"
    data = os.urandom(20 * MIB)  # over the CLI's 8 MiB threshold: a multipart upload
    big.write_bytes(data)
    (workdir / "tree" / "sub").mkdir(parents=True)
    (workdir / "tree" / "x.txt").write_text("1")
    (workdir / "tree" / "sub" / "y z.txt").write_text("2")

    server.cli("s3", "mb", f"s3://{bucket}", aws=aws)
    server.cli("s3", "cp", "--only-show-errors", str(big), f"s3://{bucket}/data/big.bin", aws=aws)
    server.cli("s3", "sync", "--only-show-errors", str(workdir / "tree"), f"s3://{bucket}/tree/",
               aws=aws)
    listing = server.cli("s3", "ls", "--recursive", f"s3://{bucket}/", aws=aws)
    names = sorted(line.split(maxsplit=3)[3] for line in listing.splitlines())
    assert names == ["data/big.bin", "tree/sub/y z.txt", "tree/x.txt"]

    back = workdir / "back.bin"
    server.cli("s3", "cp", "--only-show-errors", f"s3://{bucket}/data/big.bin", str(back), aws=aws)
    assert back.read_bytes() == data
    # A server-side copy of a large object goes through UploadPartCopy.
    server.cli("s3", "cp", "--only-show-errors", f"s3://{bucket}/data/big.bin",
               f"s3://{bucket}/data/copy.bin", aws=aws)
    head = server.cli("s3api", "head-object", "--bucket", bucket, "--key", "data/copy.bin", aws=aws)
    assert head["ContentLength"] == len(data)

    server.cli("s3", "rm", "--only-show-errors", "--recursive", f"s3://{bucket}/", aws=aws)
    server.cli("s3", "rb", f"s3://{bucket}", aws=aws)
    assert server.cli("s3api", "list-buckets", aws=aws)["Buckets"] == []


def test_aws_cli_v2_s3_commands(server, workdir):
    cli_round_trip(server, workdir, "/usr/bin/aws", "cli-v2")


def test_aws_cli_v1_s3_commands(server, workdir):
    aws = aws_cli_v1()
    if aws is None:
        pytest.skip("no pyenv AWS CLI v1 on this machine")
    cli_round_trip(server, workdir, aws, "cli-v1")


def test_aws_cli_s3api_errors(server):
    proc = server.cli("s3api", "get-object", "--bucket", "nope", "--key", "k", "/dev/null",
                      check=False)
    assert proc.returncode != 0
    assert "NoSuchBucket" in proc.stderr


def test_hundred_megabyte_cli_upload_and_ranged_downloads(server, s3, workdir):
    """The issue's yardstick: `aws s3 cp` of 100 MB (a multipart upload), then ranged GETs and
    a full download whose bytes match."""
    data = os.urandom(100 * MIB)
    src = workdir / "hundred.bin"
    src.write_bytes(data)
    server.cli("s3", "mb", "s3://big")
    server.cli("s3", "cp", str(src), "s3://big/hundred.bin")
    head = s3.head_object(Bucket="big", Key="hundred.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-13")  # the CLI's 8 MiB parts

    for start, end in [(0, 0), (MIB - 7, 3 * MIB + 11), (len(data) - 1000, len(data) - 1)]:
        got = s3.get_object(Bucket="big", Key="hundred.bin", Range=f"bytes={start}-{end}")
        assert got["ContentRange"] == f"bytes {start}-{end}/{len(data)}"
        assert got["Body"].read() == data[start:end + 1]

    dst = workdir / "back.bin"
    server.cli("s3", "cp", "s3://big/hundred.bin", str(dst))
    assert hashlib.md5(dst.read_bytes()).hexdigest() == hashlib.md5(data).hexdigest()


def test_single_put_over_five_gigabytes_is_refused_before_the_body(server, s3):
    """S3 refuses a single PUT over 5 GiB with EntityTooLarge; Hearth answers from the headers,
    so the client never sends the body, and nothing is stored."""
    s3.create_bucket(Bucket="limits")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall((f"PUT /limits/huge HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      f"Content-Length: {5 * 1024 ** 3 + 1}\r\nExpect: 100-continue\r\n\r\n")
                     .encode())
        chunks = []
        while chunk := sock.recv(65536):  # the server answers, then closes the connection
            chunks.append(chunk)
        reply = b"".join(chunks).decode()
    status_line = reply.split("\r\n", 1)[0]
    assert " 400 " in status_line, reply
    assert "<Code>EntityTooLarge</Code>" in reply
    assert "Contents" not in s3.list_objects_v2(Bucket="limits")
