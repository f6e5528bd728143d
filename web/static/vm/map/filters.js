/* The filters: only venues with a voice guide, open now (Asia/Shanghai clock) and the
 * child's age, as the button in the actions bar and a row of chips in the sheets. */
import {fmt, h, icon} from './format.js';
import {openState} from './hours.js';

export function setupVoiced(app) {
  const state = app.state;
  const voicedBtn = document.getElementById('vm-voiced-btn');
  app.setVoiced = function (on) {
    if (on === state.voiced) return;
    state.voiced = on;
    voicedBtn.setAttribute('aria-pressed', on ? 'true' : 'false');
    app.refilter();
  };
  voicedBtn.addEventListener('click', function () {
    app.setVoiced(!state.voiced);
    app.saveUrlSoon();
    app.load();
  });
}

export function setupFamily(app) {
  const state = app.state, t = app.t;
  state.open = false;
  state.age = null;

  /** Whether a venue ({minAge, maxAge, hours}) passes "open now" and the child's age. */
  app.familyPasses = function (v) {
    // Unknown hours or ages are not guessed: such venues stay, marked "hours unknown".
    if (state.open && openState(v.hours) === 'closed') return false;
    if (state.age !== null) {
      if (v.minAge !== null && v.minAge !== undefined && state.age < v.minAge) return false;
      if (v.maxAge !== null && v.maxAge !== undefined && state.age > v.maxAge) return false;
    }
    return true;
  };
  setInterval(function () { if (state.open) app.refilter(); }, 60000);

  app.syncFilters = function () {
    Array.prototype.forEach.call(document.querySelectorAll('[data-vm-filter]'), function (e) {
      const f = e.getAttribute('data-vm-filter');
      if (f === 'age') e.value = state.age === null ? '' : String(state.age);
      else e.setAttribute('aria-pressed', state[f] ? 'true' : 'false');
    });
  };

  function filtersChanged() {
    app.refilter();
    app.saveUrlSoon();
    const near = app.lastNear;
    if (near && !app.sheet.hidden && !app.tapping) app.nearFrom(near[0], near[1], near[2]);
  }

  /** The filters as a row of chips, for the near-me and list sheets. */
  app.filterBar = function () {
    const ages = h('select', {'data-vm-filter': 'age', onchange: function (e) {
      state.age = e.target.value === '' ? null : Number(e.target.value);
      filtersChanged();
    }}, [h('option', {value: '', text: t.map_age_any})]);
    for (let n = 0; n <= 17; n++) {
      ages.appendChild(h('option', {value: String(n), text: fmt(t.map_age_n, {n: n})}));
    }
    return h('div', {class: 'vm-map-filters', role: 'group', 'aria-label': t.map_filters}, [
      h('button', {type: 'button', class: 'vm-chip', 'data-vm-filter': 'voiced',
        'aria-pressed': 'false', onclick: function () {
          app.setVoiced(!state.voiced);
          app.load();
          filtersChanged();
        }}, [icon('speaker', 18), h('span', {text: t.voiced_only})]),
      h('button', {type: 'button', class: 'vm-chip', 'data-vm-filter': 'open',
        'aria-pressed': 'false', onclick: function () {
          state.open = !state.open;
          filtersChanged();
        }}, [h('span', {text: t.map_open_now})]),
      h('label', {class: 'vm-chip vm-filter-age'}, [h('span', {text: t.map_age}), ages])
    ]);
  };
  const nearBody = document.getElementById('vm-near-body');
  nearBody.insertBefore(app.filterBar(), nearBody.firstChild);
}
