// Bundles the map page's ES modules (static/vm/map-page.js and everything it imports,
// facts.json included) into one minified file, build/vm/map-page.js, with a source map: one
// request where the entry, its fifteen modules and facts.json take seventeen.
// `npm run bundle` in web/; scripts/setup runs it.
//
// The bundle's first line names its inputs and their SHA-256, so that the app can refuse a
// bundle older than its sources (voicemap/assets.py) instead of serving yesterday's map.
import {createHash} from 'node:crypto';
import {readFileSync} from 'node:fs';
import * as esbuild from 'esbuild';

const options = {
  entryPoints: ['static/vm/map-page.js'], bundle: true, format: 'esm', minify: true,
  // Browsers with ES modules (the page needs them) all read ES2017; later syntax is lowered.
  target: 'es2017', charset: 'utf8', legalComments: 'none', logLevel: 'warning',
};
const probe = await esbuild.build({...options, write: false, metafile: true});
const inputs = Object.keys(probe.metafile.inputs).sort();
const hash = createHash('sha256');
for (const path of inputs) hash.update(path + '\0').update(readFileSync(path)).update('\0');
await esbuild.build({
  ...options, outfile: 'build/vm/map-page.js', sourcemap: 'linked',
  banner: {js: `/* voicemap map bundle, sha256 ${hash.digest('hex')} of ${inputs.join(' ')} */`},
});
