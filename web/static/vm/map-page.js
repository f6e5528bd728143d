/* The map page's scripts, in the order they run: map.js defines voicemap.start (and imports
 * the modules under map/), then whatson.js and works-map.js wrap it. The page loads this
 * file as its one module script: as a bundle built from it (web/bundle.mjs, one request),
 * or, with VOICEMAP_MAP_BUNDLE=false, as it is, each module fetched on its own. */
import './map.js';
import './whatson.js';
import './works-map.js';
