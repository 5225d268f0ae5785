/**
 * Prints the Pothos schema to schema.graphql (`--write`), or fails when the committed file is
 * stale (`--check`, run by `npm test`).
 */
import fs from 'node:fs';
import { lexicographicSortSchema, printSchema } from 'graphql';
import { schema } from './index.js';

const FILE = new URL('../../schema.graphql', import.meta.url);
const printed = `${printSchema(lexicographicSortSchema(schema))}\n`;

if (process.argv.includes('--write')) {
  fs.writeFileSync(FILE, printed);
  console.log('schema.graphql written');
} else {
  const current = fs.existsSync(FILE) ? fs.readFileSync(FILE, 'utf8') : '';
  if (current !== printed) {
    console.error('schema.graphql is out of date with the code: run `npm run schema:print` and commit it.');
    process.exit(1);
  }
}
