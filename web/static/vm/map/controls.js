/* The map's own controls: localised zoom, the layer control with a title, the legend, and
 * the toast that reports a failed load. */
import {h} from './format.js';

export function setupControls(app) {
  const map = app.map, control = app.control, t = app.t;
  L.control.zoom({position: 'topleft', zoomInTitle: t.zoom_in, zoomOutTitle: t.zoom_out})
    .addTo(map);
  map.attributionControl.setPrefix(false);
  if (!app.narrow.matches) {
    // Wide screens: the layer list stays open (the options are read when it is added).
    control.remove();
    control.options.collapsed = false;
    control.addTo(map);
  }
  const cEl = control.getContainer();
  cEl.setAttribute('aria-label', t.layers);
  const toggle = cEl.querySelector('.leaflet-control-layers-toggle');
  if (toggle) {
    toggle.title = t.layers;
    toggle.setAttribute('aria-label', t.layers);
  }
  const list = cEl.querySelector('.leaflet-control-layers-list');
  if (list) list.insertBefore(h('p', {class: 'vm-layers-title', text: t.layers}), list.firstChild);

  const legendEl = document.getElementById('vm-legend');
  const Legend = L.Control.extend({
    options: {position: 'topright'},
    onAdd: function () {
      L.DomEvent.disableClickPropagation(legendEl);
      L.DomEvent.disableScrollPropagation(legendEl);
      legendEl.hidden = false;
      return legendEl;
    }
  });
  new Legend().addTo(map);
  if (!app.narrow.matches) legendEl.querySelector('details').open = true;

  app.hint = document.getElementById('vm-hint');
  const toastEl = document.getElementById('vm-toast');
  let timer = null;
  app.toast = function (text) {
    toastEl.textContent = text;
    toastEl.hidden = false;
    clearTimeout(timer);
    timer = setTimeout(function () { toastEl.hidden = true; }, 5000);
  };
}
