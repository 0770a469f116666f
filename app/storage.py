"""Report files: where a generated CSV lives until retention deletes it.

Two backends with one interface (`ReportStorage`):

- `LocalStorage` (the default, `PARTNERHUB_REPORTS_DIR` or `<var_dir>/reports`)
  writes each file under a `.partial/` name and renames it into place only
  when the whole file is written.
- `S3Storage` (when `PARTNERHUB_S3_BUCKET` is set; any S3-compatible store via
  `PARTNERHUB_S3_ENDPOINT_URL`) writes a multipart upload that becomes an
  object only when completed; a small file is one PUT.

Either way a reader never sees half a report, and a worker killed midway
leaves only an invisible partial that the retried job replaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from app.config import Settings

READ_CHUNK_BYTES = 64 * 1024
# S3 parts are at least 5 MiB (but the last); 8 MiB keeps memory bounded and parts few.
S3_PART_BYTES = 8 * 1024 * 1024


class StorageError(RuntimeError):
    """A report file cannot be written or read; the message says which."""


class Upload(Protocol):
    async def write(self, chunk: bytes) -> None: ...
    async def commit(self) -> None: ...
    async def abort(self) -> None: ...


class ReportStorage(Protocol):
    async def upload(self, key: str) -> Upload: ...
    async def exists(self, key: str) -> bool: ...
    async def size(self, key: str) -> int: ...
    def read(self, key: str) -> AsyncIterator[bytes]: ...
    async def delete(self, key: str) -> None: ...
    def describe(self, key: str) -> str: ...


# ---------------------------------------------------------------- local folder


class FileUpload:
    """One file being written under its partial name."""

    def __init__(self, partial: Path, final: Path) -> None:
        self._partial = partial
        self._final = final
        partial.parent.mkdir(parents=True, exist_ok=True)
        self._out: BinaryIO = partial.open("wb")

    async def write(self, chunk: bytes) -> None:
        self._out.write(chunk)

    async def commit(self) -> None:
        """Make the file visible under its key (atomic rename on the same disk)."""
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        self._final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._partial, self._final)

    async def abort(self) -> None:
        self._out.close()
        self._partial.unlink(missing_ok=True)


class LocalStorage:
    """Report files in a local folder (one folder shared by every process)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise StorageError(f"storage key {key!r} leaves the reports folder")
        return path

    def partial_path(self, key: str) -> Path:
        return self._path(f".partial/{key}")

    def describe(self, key: str) -> str:
        return str(self._path(key))

    async def upload(self, key: str) -> FileUpload:
        """Start writing `key`; any partial file left by an earlier try is replaced."""
        return FileUpload(self.partial_path(key), self._path(key))

    async def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    async def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    async def read(self, key: str) -> AsyncIterator[bytes]:
        try:
            handle = self._path(key).open("rb")
        except FileNotFoundError:
            raise StorageError(f"report file {key!r} is missing") from None
        with handle:
            while chunk := await asyncio.to_thread(handle.read, READ_CHUNK_BYTES):
                yield chunk

    async def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
        self.partial_path(key).unlink(missing_ok=True)


# ---------------------------------------------------------------- S3-compatible


class S3Upload:
    """A multipart upload, started when the first part is full; a file smaller
    than one part is a single PUT at commit."""

    def __init__(self, storage: S3Storage, key: str, client: Any, exit_stack: Any) -> None:
        self._storage = storage
        self._key = key
        self._client = client
        self._stack = exit_stack
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    async def write(self, chunk: bytes) -> None:
        self._buffer.extend(chunk)
        if len(self._buffer) >= S3_PART_BYTES:
            await self._send_part()

    async def _send_part(self) -> None:
        bucket, key = self._storage.bucket, self._storage.object_key(self._key)
        if self._upload_id is None:
            started = await self._client.create_multipart_upload(
                Bucket=bucket, Key=key, ContentType="text/csv; charset=utf-8"
            )
            self._upload_id = started["UploadId"]
        number = len(self._parts) + 1
        sent = await self._client.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=bytes(self._buffer),
        )
        self._parts.append({"ETag": sent["ETag"], "PartNumber": number})
        self._buffer.clear()

    async def commit(self) -> None:
        bucket, key = self._storage.bucket, self._storage.object_key(self._key)
        try:
            if self._upload_id is None:
                await self._client.put_object(
                    Bucket=bucket,
                    Key=key,
                    Body=bytes(self._buffer),
                    ContentType="text/csv; charset=utf-8",
                )
            else:
                if self._buffer:
                    await self._send_part()
                await self._client.complete_multipart_upload(
                    Bucket=bucket,
                    Key=key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
        finally:
            await self._stack.aclose()

    async def abort(self) -> None:
        try:
            if self._upload_id is not None:
                await self._client.abort_multipart_upload(
                    Bucket=self._storage.bucket,
                    Key=self._storage.object_key(self._key),
                    UploadId=self._upload_id,
                )
        finally:
            await self._stack.aclose()


class S3Storage:
    """Report files as objects of one bucket, under a prefix (aioboto3)."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        import aioboto3

        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self._session = aioboto3.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
        )

    def object_key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.object_key(key)}"

    def _client(self) -> Any:
        return self._session.client("s3", endpoint_url=self.endpoint_url)

    async def upload(self, key: str) -> S3Upload:
        """Start writing `key`; unfinished uploads of it left by an earlier try are aborted."""
        stack = contextlib.AsyncExitStack()
        client = await stack.enter_async_context(self._client())
        try:
            pending = await client.list_multipart_uploads(
                Bucket=self.bucket, Prefix=self.object_key(key)
            )
            for stale in pending.get("Uploads", []):
                if stale["Key"] == self.object_key(key):
                    await client.abort_multipart_upload(
                        Bucket=self.bucket, Key=stale["Key"], UploadId=stale["UploadId"]
                    )
        except BaseException:
            await stack.aclose()
            raise
        return S3Upload(self, key, client, stack)

    async def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        async with self._client() as client:
            try:
                return await client.head_object(Bucket=self.bucket, Key=self.object_key(key))
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise

    async def exists(self, key: str) -> bool:
        return await self._head(key) is not None

    async def size(self, key: str) -> int:
        head = await self._head(key)
        if head is None:
            raise StorageError(f"report object {self.describe(key)} is missing")
        return int(head["ContentLength"])

    async def read(self, key: str) -> AsyncIterator[bytes]:
        async with self._client() as client:
            answer = await client.get_object(Bucket=self.bucket, Key=self.object_key(key))
            async for chunk in answer["Body"].iter_chunks(READ_CHUNK_BYTES):
                yield chunk

    async def delete(self, key: str) -> None:
        async with self._client() as client:
            await client.delete_object(Bucket=self.bucket, Key=self.object_key(key))


def open_storage(settings: Settings) -> ReportStorage:
    """The S3-compatible bucket when PARTNERHUB_S3_BUCKET is set, else the local folder."""
    if settings.s3_bucket:
        return S3Storage(
            settings.s3_bucket,
            prefix=settings.s3_prefix,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
        )
    return LocalStorage(settings.report_folder)
