"""Uploads FILE with the official Box Python SDK's upload_big_file (box-sdk-gen) to an upload
base (the box-upload emulator) and prints one line: `name=... size=... secs=... sha1=... file_id=...`.

usage: python sdk_python.py UPLOAD_BASE FILE NAME [TOKEN]
"""

import os
import sys
import time

from box_sdk_gen import BoxClient, BoxDeveloperTokenAuth, NetworkSession
from box_sdk_gen.networking.base_urls import BaseUrls


def main():
    upload_base, path, name = sys.argv[1], sys.argv[2], sys.argv[3]
    token = sys.argv[4] if len(sys.argv) > 4 else "test-token"
    origin = upload_base[: -len("/api")] if upload_base.endswith("/api") else upload_base
    client = BoxClient(
        auth=BoxDeveloperTokenAuth(token=token),
        network_session=NetworkSession(
            base_urls=BaseUrls(base_url=origin, upload_url=upload_base, oauth_2_url=origin + "/oauth2")
        ),
    )
    size = os.path.getsize(path)
    started = time.monotonic()
    with open(path, "rb") as f:
        file = client.chunked_uploads.upload_big_file(f, name, size, "0")
    secs = time.monotonic() - started
    print(f"name={name} size={size} secs={secs:.3f} sha1={file.sha_1} file_id={file.id}", flush=True)


if __name__ == "__main__":
    main()
