/* Where the open sheet's top is, so the actions bar sits above it and stays usable. */

export function setupLayout(app) {
  const narrow = app.narrow;
  function placeActions() {
    let lift = 0;
    Array.prototype.forEach.call(document.querySelectorAll('.vm-sheet'), function (e) {
      const r = e.getBoundingClientRect();
      if (r.height && (narrow.matches || r.left < 400)) {
        lift = Math.max(lift, window.innerHeight - r.top);
      }
    });
    document.body.style.setProperty('--vm-sheet-lift', lift ? lift + 'px' : '0px');
    document.body.classList.toggle('vm-sheet-shown', lift > 0);
  }
  const sheets = document.querySelectorAll('.vm-sheet');
  if (window.ResizeObserver) {
    const sheetWatch = new ResizeObserver(placeActions);
    Array.prototype.forEach.call(sheets, function (e) { sheetWatch.observe(e); });
  }
  if (window.MutationObserver) {
    const sheetShown = new MutationObserver(placeActions);
    Array.prototype.forEach.call(sheets, function (e) {
      sheetShown.observe(e, {attributes: true, attributeFilter: ['hidden', 'class']});
    });
  }
}
