import { createHash } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { cachedArtifactStore, insideFolder, type ArtifactFile } from '../../data/artifact-store.js';
import type { BlobStore } from '../../data/blob-store.js';
import { MenagerieError } from '../../core/errors.js';
import { definePlugin, type StoragePlugin } from '../../plugin-api/plugin.js';

const BLOB_KEY = /^[0-9a-f]{2}\/[0-9a-f]{2}\/[0-9a-f]{64}(\.[a-z0-9]{1,8})?$/;
const MIB = 1024 * 1024;

/** A parsed `s3://bucket/prefix?endpoint=http://…&region=…` store URL. */
export interface S3Location {
  bucket: string;
  /** Key prefix without a trailing slash; '' for the bucket's root. */
  prefix: string;
  /** An S3-compatible server (Ceph RGW, MinIO); AWS when absent. */
  endpoint?: string;
  region?: string;
}

export interface S3StorageOptions {
  /** Objects from this size up are uploaded in parts (default 16 MiB). */
  multipartThreshold?: number;
  /** Size of each part but the last (default 8 MiB; S3's minimum is 5 MiB). */
  partSize?: number;
}

export function parseS3Url(url: string): S3Location {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    parsed = new URL('invalid:');
  }
  if (parsed.protocol !== 's3:' || !parsed.hostname)
    throw new MenagerieError(
      'CONFIG_INVALID',
      `store URL should be s3://bucket/prefix?endpoint=http://host:port, got '${url}'`,
    );
  const endpoint = parsed.searchParams.get('endpoint') ?? undefined;
  const region = parsed.searchParams.get('region') ?? undefined;
  return {
    bucket: parsed.hostname,
    prefix: decodeURIComponent(parsed.pathname).replace(/^\/+|\/+$/g, ''),
    ...(endpoint && { endpoint }),
    ...(region && { region }),
  };
}

/**
 * An S3 client for the location, with credentials from the standard variables
 * (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN`; region from
 * the URL, `AWS_REGION` or `us-east-1`). Path-style addressing, and checksums only where
 * S3 requires them: Ceph RGW (Pacific) refuses the SDK's trailing checksums.
 */
export function createS3Client(location: S3Location, env = process.env): S3Client {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  // Explicit credentials: the SDK's default chain would otherwise probe the EC2 metadata
  // address on a machine without them.
  if (!accessKeyId || !secretAccessKey)
    throw new MenagerieError(
      'CONFIG_INVALID',
      `the S3 store s3://${location.bucket} needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`,
    );
  // The SDK is pinned to its last release for Node 20 on purpose; its notice that later ones
  // need Node 22 would otherwise print at every command (set the variable to see it).
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return new S3Client({
    region: location.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    ...(location.endpoint && { endpoint: location.endpoint }),
    forcePathStyle: true,
    credentials: {
      accessKeyId,
      secretAccessKey,
      ...(env.AWS_SESSION_TOKEN && { sessionToken: env.AWS_SESSION_TOKEN }),
    },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
  });
}

function status(error: unknown): number | undefined {
  return error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
}

function unavailable(what: string, error: unknown): MenagerieError {
  return new MenagerieError(
    'STORE_UNAVAILABLE',
    `${what}: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
    { cause: error },
  );
}

/**
 * Objects in an S3 bucket, by key, for the blob and artifact stores: put (in parts when
 * large, create-once when asked), get, head, delete, list.
 */
function bucketObjects(client: S3Client, location: S3Location, options: S3StorageOptions) {
  const { bucket } = location;
  const threshold = options.multipartThreshold ?? 16 * MIB;
  const partSize = Math.max(options.partSize ?? 8 * MIB, 5 * MIB);
  const where = `s3://${bucket}`;

  async function putMultipart(key: string, bytes: Buffer, createOnly: boolean): Promise<string> {
    const { UploadId } = await client.send(
      new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }),
    );
    try {
      const parts: { ETag: string; PartNumber: number }[] = [];
      for (let offset = 0, n = 1; offset < bytes.length; offset += partSize, n++) {
        const { ETag } = await client.send(
          new UploadPartCommand({
            Bucket: bucket,
            Key: key,
            UploadId,
            PartNumber: n,
            Body: bytes.subarray(offset, offset + partSize),
          }),
        );
        parts.push({ ETag: ETag!, PartNumber: n });
      }
      const done = await client.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: key,
          UploadId,
          MultipartUpload: { Parts: parts },
          ...(createOnly && { IfNoneMatch: '*' }),
        }),
      );
      return done.ETag ?? '';
    } catch (error) {
      await client
        .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId }))
        .catch(() => {});
      throw error;
    }
  }

  return {
    /** Writes the object; with `createOnly` an existing one is kept (null returned). */
    async put(key: string, bytes: Buffer, createOnly: boolean): Promise<string | null> {
      try {
        if (bytes.length >= threshold) {
          // Parts cost several requests: skip them when the object is already there.
          if (createOnly && (await this.head(key))) return null;
          return await putMultipart(key, bytes, createOnly);
        }
        const out = await client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body: bytes,
            ContentLength: bytes.length,
            ...(createOnly && { IfNoneMatch: '*' }),
          }),
        );
        return out.ETag ?? '';
      } catch (error) {
        // 412: the object exists, and content-addressed keys mean it holds these bytes.
        if (createOnly && status(error) === 412) return null;
        throw unavailable(`cannot write ${where}/${key}`, error);
      }
    },
    async get(key: string): Promise<Buffer | null> {
      try {
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return Buffer.from(await out.Body!.transformToByteArray());
      } catch (error) {
        if (status(error) === 404) return null;
        throw unavailable(`cannot read ${where}/${key}`, error);
      }
    },
    async head(key: string): Promise<{ bytes: number; modifiedAt: number } | null> {
      try {
        const out = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return { bytes: out.ContentLength ?? 0, modifiedAt: out.LastModified?.getTime() ?? 0 };
      } catch (error) {
        if (status(error) === 404) return null;
        throw unavailable(`cannot stat ${where}/${key}`, error);
      }
    },
    async delete(key: string): Promise<void> {
      try {
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
      } catch (error) {
        if (status(error) !== 404) throw unavailable(`cannot delete ${where}/${key}`, error);
      }
    },
    async *list(
      prefix: string,
    ): AsyncIterable<{ key: string; bytes: number; etag: string; modifiedAt: number }> {
      let token: string | undefined;
      do {
        let page;
        try {
          page = await client.send(
            new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
          );
        } catch (error) {
          throw unavailable(`cannot list ${where}/${prefix}`, error);
        }
        for (const o of page.Contents ?? [])
          yield {
            key: o.Key!,
            bytes: o.Size ?? 0,
            etag: o.ETag ?? '',
            modifiedAt: o.LastModified?.getTime() ?? 0,
          };
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    },
  };
}

/**
 * Image bytes and artifacts in an S3-compatible bucket, configured by the workspace's store
 * URL (`--store` / `MENAGERIE_STORE_URL=s3://bucket/prefix?endpoint=http://…`):
 *
 * - blobs are content-addressed, `<prefix>/blobs/ab/cd/<sha256>.<ext>`, written once
 *   (`If-None-Match: *`) and named by the same `blob:ab/cd/<sha256>.<ext>` URIs as the
 *   local store, so a workspace moves between the two without rewriting its rows;
 * - run and model artifacts are folders under `<prefix>/artifacts/`, named
 *   `s3://bucket/prefix/artifacts/…`, read through a local cache in `<data-dir>/cache`.
 *
 * ```ts
 * // menagerie.config.js: { plugins: [s3Storage({ multipartThreshold: 64 * 1024 * 1024 })] }
 * ```
 */
export function s3Storage(options: S3StorageOptions = {}): StoragePlugin {
  const clients = new Map<string, ReturnType<typeof bucketObjects>>();
  const objectsFor = (url: string | undefined) => {
    if (!url)
      throw new MenagerieError(
        'CONFIG_INVALID',
        'the S3 store needs a store URL: --store s3://bucket/prefix?endpoint=… or MENAGERIE_STORE_URL',
      );
    let objects = clients.get(url);
    if (!objects) {
      const location = parseS3Url(url);
      objects = bucketObjects(createS3Client(location), location, options);
      clients.set(url, objects);
    }
    return { objects, location: parseS3Url(url) };
  };
  const under = (prefix: string, key: string) => (prefix ? `${prefix}/${key}` : key);

  return definePlugin({
    name: 'menagerie:s3',
    kind: 'storage',
    version: '1.0.0',
    description: 'content-addressed objects and artifact folders in an S3-compatible bucket',
    createStore({ url }): BlobStore {
      const { objects, location } = objectsFor(url);
      const blobs = under(location.prefix, 'blobs');
      const keyOf = (uri: string): string => {
        const key = uri.slice('blob:'.length);
        if (!uri.startsWith('blob:') || !BLOB_KEY.test(key))
          throw new MenagerieError('BLOB_URI_UNSUPPORTED', `not a blob URI: ${uri}`);
        return `${blobs}/${key}`;
      };
      return {
        schemes: ['blob'],
        location: `s3://${location.bucket}/${blobs}${location.endpoint ? ` at ${location.endpoint}` : ''}`,
        async put(bytes, hints = {}) {
          const sha256 = hints.sha256 ?? createHash('sha256').update(bytes).digest('hex');
          const ext = hints.ext ? `.${hints.ext.toLowerCase()}` : '';
          const uri = `blob:${sha256.slice(0, 2)}/${sha256.slice(2, 4)}/${sha256}${ext}`;
          await objects.put(
            keyOf(uri),
            Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
            true,
          );
          return uri;
        },
        async get(uri) {
          const bytes = await objects.get(keyOf(uri));
          if (!bytes)
            throw new MenagerieError(
              'BLOB_NOT_FOUND',
              `no blob at ${uri} in s3://${location.bucket}`,
            );
          return bytes;
        },
        stat: (uri) => objects.head(keyOf(uri)),
        delete: (uri) => objects.delete(keyOf(uri)),
        async *list() {
          for await (const o of objects.list(`${blobs}/`))
            yield { uri: `blob:${o.key.slice(blobs.length + 1)}`, modifiedAt: o.modifiedAt };
        },
      };
    },
    createArtifactStore({ url, dataDir }) {
      const { objects, location } = objectsFor(url);
      const root = `s3://${location.bucket}/${under(location.prefix, 'artifacts')}`;
      const keyOf = (uri: string): string => {
        if (!uri.startsWith(`s3://${location.bucket}/`))
          throw new MenagerieError(
            'BLOB_URI_UNSUPPORTED',
            `${uri} is not in this store's bucket (s3://${location.bucket})`,
          );
        return uri.slice(`s3://${location.bucket}/`.length).replace(/\/+$/, '');
      };
      const fileKey = (uri: string, file: string) => {
        // The same check as a local folder: no '..', no absolute paths.
        insideFolder('/artifact', file);
        return `${keyOf(uri)}/${file}`;
      };
      return cachedArtifactStore(
        {
          schemes: ['s3'],
          location: `${root}${location.endpoint ? ` at ${location.endpoint}` : ''}`,
          folderUri: (key) => `${root}/${key.replace(/^\/+|\/+$/g, '')}`,
          async list(uri) {
            const prefix = `${keyOf(uri)}/`;
            const files: ArtifactFile[] = [];
            for await (const o of objects.list(prefix))
              files.push({ path: o.key.slice(prefix.length), bytes: o.bytes, version: o.etag });
            return files;
          },
          read: async (uri, file) => objects.get(fileKey(uri, file)),
          async write(uri, file, bytes) {
            return (await objects.put(fileKey(uri, file), bytes, false)) ?? '';
          },
        },
        { cacheDir: `${dataDir}/cache/artifacts` },
      );
    },
  });
}
