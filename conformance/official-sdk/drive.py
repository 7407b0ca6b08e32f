"""Drives all 13 chunked-upload operations, upload_big_file, and the direct uploads
(uploads.upload_file, uploads.upload_file_version) and uploads.preflight_file_upload_check of the
official Box Python SDK (box-sdk-gen) against the box-upload emulator, through the box-upload
recorder.

Environment: BOX_UPLOAD_URL (the recorder's <base>/api), BOX_RECORDER (the recorder's base URL,
for switching scenarios), BOX_TOKEN. Exits non-zero on the first failure.
"""

import base64
import hashlib
import os
import random
import sys
import urllib.parse
import urllib.request

from box_sdk_gen import BoxClient, BoxDeveloperTokenAuth, NetworkSession
from box_sdk_gen.networking.base_urls import BaseUrls
from box_sdk_gen.internal.utils import date_time_from_string, generate_byte_stream_from_buffer
from box_sdk_gen.managers.uploads import (
    PreflightFileUploadCheckParent,
    UploadFileAttributes,
    UploadFileAttributesParentField,
    UploadFileVersionAttributes,
)

UPLOAD_URL = os.environ["BOX_UPLOAD_URL"]
RECORDER = os.environ["BOX_RECORDER"]
TOKEN = os.environ.get("BOX_TOKEN", "test-token")
SIZE = 20_000_000

CONTENT = random.Random(7).randbytes(SIZE)


def scenario(name, description):
    query = urllib.parse.urlencode({"name": name, "description": description})
    req = urllib.request.Request(f"{RECORDER}/__recorder/scenario?{query}", method="POST", data=b"")
    with urllib.request.urlopen(req) as res:
        assert res.status == 204, res.status
    print(f"scenario {name}", flush=True)


def sha_b64(data):
    return base64.b64encode(hashlib.sha1(data).digest()).decode()


def part_args(session, index):
    start = index * session.part_size
    end = min(start + session.part_size, SIZE)
    chunk = CONTENT[start:end]
    return (
        generate_byte_stream_from_buffer(chunk),
        "sha=" + sha_b64(chunk),
        f"bytes {start}-{end - 1}/{SIZE}",
    )


def main():
    client = BoxClient(
        auth=BoxDeveloperTokenAuth(token=TOKEN),
        network_session=NetworkSession(
            base_urls=BaseUrls(
                base_url=RECORDER,
                upload_url=UPLOAD_URL,
                oauth_2_url=RECORDER + "/oauth2",
            )
        ),
    )
    cu = client.chunked_uploads

    scenario("upload_big_file", "client.chunked_uploads.upload_big_file of a 20,000,000-byte file")
    big = cu.upload_big_file(generate_byte_stream_from_buffer(CONTENT), "big.bin", SIZE, "0")
    assert big.size == SIZE, big.size
    assert big.sha_1 == hashlib.sha1(CONTENT).hexdigest(), big.sha_1
    file_id = big.id

    scenario("create_session", "create_file_upload_session")
    s = cu.create_file_upload_session("0", SIZE, "create.bin")
    assert s.total_parts == -(-SIZE // s.part_size)

    scenario("create_session_for_existing_file", "create_file_upload_session_for_existing_file")
    s = cu.create_file_upload_session_for_existing_file(file_id, SIZE, file_name="big.bin")
    assert s.id

    scenario("get_session_by_id", "get_file_upload_session_by_id")
    s = cu.create_file_upload_session("0", SIZE, "get-id.bin")
    assert cu.get_file_upload_session_by_id(s.id).id == s.id

    scenario("get_session_by_url", "get_file_upload_session_by_url")
    s = cu.create_file_upload_session("0", SIZE, "get-url.bin")
    assert cu.get_file_upload_session_by_url(s.session_endpoints.status).id == s.id

    scenario("upload_part_by_id", "upload_file_part")
    s = cu.create_file_upload_session("0", SIZE, "part-id.bin")
    p = cu.upload_file_part(s.id, *part_args(s, 0)).part
    assert p.offset == 0 and p.size == s.part_size

    scenario("upload_part_by_url", "upload_file_part_by_url")
    s = cu.create_file_upload_session("0", SIZE, "part-url.bin")
    p = cu.upload_file_part_by_url(s.session_endpoints.upload_part, *part_args(s, 1)).part
    assert p.offset == s.part_size

    scenario("list_parts_by_id", "get_file_upload_session_parts")
    s = cu.create_file_upload_session("0", SIZE, "list-id.bin")
    cu.upload_file_part(s.id, *part_args(s, 0))
    assert cu.get_file_upload_session_parts(s.id).total_count == 1

    scenario("list_parts_by_url", "get_file_upload_session_parts_by_url with offset and limit")
    s = cu.create_file_upload_session("0", SIZE, "list-url.bin")
    cu.upload_file_part(s.id, *part_args(s, 0))
    listed = cu.get_file_upload_session_parts_by_url(s.session_endpoints.list_parts, offset=0, limit=10)
    assert listed.total_count == 1 and len(listed.entries) == 1

    scenario("abort_by_id", "delete_file_upload_session_by_id")
    s = cu.create_file_upload_session("0", SIZE, "abort-id.bin")
    cu.delete_file_upload_session_by_id(s.id)

    scenario("abort_by_url", "delete_file_upload_session_by_url")
    s = cu.create_file_upload_session("0", SIZE, "abort-url.bin")
    cu.delete_file_upload_session_by_url(s.session_endpoints.abort)

    for by in ("id", "url"):
        scenario(f"commit_by_{by}", f"all parts, then create_file_upload_session_commit{'_by_url' if by == 'url' else ''}")
        s = cu.create_file_upload_session("0", SIZE, f"commit-{by}.bin")
        parts = [cu.upload_file_part(s.id, *part_args(s, i)).part for i in range(s.total_parts)]
        digest = "sha=" + sha_b64(CONTENT)
        if by == "id":
            files = cu.create_file_upload_session_commit(s.id, parts, digest)
        else:
            files = cu.create_file_upload_session_commit_by_url(s.session_endpoints.commit, parts, digest)
        assert files is not None and files.total_count == 1, files
        assert files.entries[0].size == SIZE

    # The direct uploads and the preflight check (issue 13).
    small = random.Random(8).randbytes(1000)
    small_sha1 = hashlib.sha1(small).hexdigest()
    up = client.uploads
    scenario("preflight_file_upload_check", "uploads.preflight_file_upload_check of a new file")
    checked = up.preflight_file_upload_check(
        name="small.txt", size=len(small), parent=PreflightFileUploadCheckParent(id="0")
    )
    assert checked.upload_url, checked

    scenario("upload_file", "uploads.upload_file (direct) with content-md5 and content_modified_at")
    attributes = UploadFileAttributes(
        name="small.txt",
        parent=UploadFileAttributesParentField(id="0"),
        content_modified_at=date_time_from_string("2020-01-02T03:04:05Z"),
    )
    files = up.upload_file(attributes, generate_byte_stream_from_buffer(small), content_md_5=small_sha1)
    assert files.entries[0].sha_1 == small_sha1 and files.entries[0].size == len(small), files
    small_id, small_etag = files.entries[0].id, files.entries[0].etag

    scenario("upload_file_version", "uploads.upload_file_version (direct) with If-Match and content-md5")
    v2 = random.Random(9).randbytes(1000)
    attributes = UploadFileVersionAttributes(name="small.txt")
    files = up.upload_file_version(
        small_id,
        attributes,
        generate_byte_stream_from_buffer(v2),
        if_match=small_etag,
        content_md_5=hashlib.sha1(v2).hexdigest(),
    )
    assert files.entries[0].sha_1 == hashlib.sha1(v2).hexdigest(), files

    print("official SDK: all operations succeeded", flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # report clearly, fail the run
        print(f"official SDK check FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        raise
