// Runs s3rver in a process of its own, started by startS3Server() in s3.ts with
// --openssl-legacy-provider: s3rver 3.7.1 encrypts ListObjectsV2 continuation tokens with DES,
// which OpenSSL 3 offers only through that provider, so in a plain Node 22 process every
// listing longer than one page fails with a 500.
// Arguments: <directory> <bucket> [port]. Prints {"port":N} once listening; exits when stdin closes,
// so it never outlives the test process that started it.
'use strict';
const S3rver = require('s3rver');

const [directory, bucket, port = '0'] = process.argv.slice(2);
const server = new S3rver({ address: '127.0.0.1', port: Number(port), silent: true, directory, configureBuckets: [{ name: bucket }] });
server.run().then(
  ({ port }) => process.stdout.write(`${JSON.stringify({ port })}\n`),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
process.stdin.on('end', () => process.exit(0)).resume();
