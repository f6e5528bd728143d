/* Loading the venues in view from /api/map/venues: compact rows, or grid counts when the
 * view holds too many. The latest request wins; older ones are aborted. */

function clamp(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }

export {clamp};

export function setupData(app, vm) {
  const map = app.map, state = app.state, cfg = app.cfg;
  let seq = 0, controller = null, timer = null;

  function done() {
    app.renderList();
    if (!state.loads && window.performance) vm.readyAt = performance.now();
    state.loads++;
    document.documentElement.setAttribute('data-vm-ready', '1');
    document.documentElement.setAttribute('data-vm-loads', String(state.loads));
  }

  app.load = function () {
    const mine = ++seq;
    if (controller) controller.abort();
    controller = window.AbortController ? new AbortController() : null;
    const active = app.activeCats();
    if (!active.length) {
      app.gridLayer.clearLayers();
      app.hint.hidden = true;
      return done();
    }
    const b = map.getBounds().pad(0.15);
    const sw = app.toWgs(b.getSouthWest()), ne = app.toWgs(b.getNorthEast());
    const q = new URLSearchParams({
      bbox: [clamp(sw[0], -180, 180), clamp(sw[1], -90, 90), clamp(ne[0], -180, 180),
        clamp(ne[1], -90, 90)].map(function (v) { return v.toFixed(5); }).join(','),
      zoom: String(Math.round(map.getZoom())), lang: app.lang});
    if (active.length < app.cats.length) q.set('category', active.join(','));
    if (state.voiced) q.set('voiced', '1');
    state.loading++;
    fetch(cfg.urls.data + '?' + q.toString(), {signal: controller ? controller.signal : undefined})
      .then(function (r) {
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.json();
      })
      .then(function (d) {
        state.loading--;
        if (mine !== seq) return;
        if (d.mode === 'grid') app.showGrid(d.cells);
        else app.showPoints(d.v);
        done();
      })
      .catch(function (err) {
        state.loading--;
        if (err && err.name === 'AbortError') return;
        app.toast(app.t.load_failed);
        done();
      });
  };

  app.loadSoon = function () {
    clearTimeout(timer);
    timer = setTimeout(app.load, 120);
  };
}
