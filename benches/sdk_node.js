// Uploads FILE with the official Box Node SDK's chunkedUploads.uploadBigFile (box-node-sdk, the
// generated SDK) to an upload base (the box-upload emulator) and prints one line:
// `name=... size=... secs=... sha1=... file_id=...`.
//
// usage: NODE_PATH=<dir>/node_modules node sdk_node.js UPLOAD_BASE FILE NAME [TOKEN]
'use strict';
const fs = require('fs');
const { BoxClient, BoxDeveloperTokenAuth } = require('box-node-sdk');

async function main() {
  const [uploadBase, path, name, token = 'test-token'] = process.argv.slice(2);
  const origin = uploadBase.endsWith('/api') ? uploadBase.slice(0, -4) : uploadBase;
  const client = new BoxClient({ auth: new BoxDeveloperTokenAuth({ token }) }).withCustomBaseUrls({
    baseUrl: origin,
    uploadUrl: uploadBase,
    oauth2Url: origin + '/oauth2',
  });
  const size = fs.statSync(path).size;
  const started = process.hrtime.bigint();
  const file = await client.chunkedUploads.uploadBigFile(fs.createReadStream(path), name, size, '0');
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(`name=${name} size=${size} secs=${secs.toFixed(3)} sha1=${file.sha1} file_id=${file.id}`);
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
