// Writes a gzip twin (`name.gz`) of every text file in dist/, which the server embeds and
// sends to browsers that accept gzip, so it never compresses at request time.
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const TEXT = /\.(html|js|css|svg|json)$/;

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (TEXT.test(name)) {
      const bytes = readFileSync(path);
      const gzipped = gzipSync(bytes, { level: 9 });
      if (gzipped.length < bytes.length) writeFileSync(path + ".gz", gzipped);
    }
  }
}

walk("dist");
