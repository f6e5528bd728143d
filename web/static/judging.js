/* The juror's judging page: keyboard shortcuts. Digits 0-9 (and T for 10) score the current
 * criterion and move to the next; arrow up/down choose the criterion; Enter or S saves; arrow
 * left/right (or J/K) go to the previous/next work. Without script the form works as is. */
(function () {
  'use strict';
  var form = document.querySelector('.judge-form');
  if (!form) return;
  var sets = Array.prototype.slice.call(form.querySelectorAll('.judge-criterion'));
  var current = 0;
  function firstEmpty() {
    for (var i = 0; i < sets.length; i++) {
      if (!sets[i].querySelector('input:checked')) return i;
    }
    return 0;
  }
  function mark(i) {
    current = Math.max(0, Math.min(sets.length - 1, i));
    sets.forEach(function (s, j) { s.classList.toggle('judge-current', j === current); });
  }
  mark(firstEmpty());
  form.addEventListener('focusin', function (e) {
    var s = e.target.closest && e.target.closest('.judge-criterion');
    if (s) mark(sets.indexOf(s));
  });
  document.addEventListener('keydown', function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var tag = (e.target.tagName || '').toLowerCase();
    if (tag === 'textarea' || (tag === 'input' && e.target.type !== 'radio') ||
        tag === 'audio' || tag === 'summary') return;
    var k = e.key, score = null;
    if (/^[0-9]$/.test(k)) score = k;
    else if (k === 't' || k === 'T') score = '10';
    if (score !== null) {
      var input = sets[current].querySelector('input[value="' + score + '"]');
      if (input) {
        input.checked = true;
        input.focus();
        mark(current + 1 < sets.length ? current + 1 : current);
      }
      e.preventDefault();
    } else if (k === 'ArrowDown' || k === 'ArrowUp') {
      mark(current + (k === 'ArrowDown' ? 1 : -1));
      var sel = sets[current].querySelector('input:checked') || sets[current].querySelector('input');
      if (sel) sel.focus();
      e.preventDefault();
    } else if (k === 'Enter' || k === 's' || k === 'S') {
      e.preventDefault();
      if (form.reportValidity()) form.submit();
    } else if (k === 'ArrowLeft' || k === 'j' || k === 'J' || k === 'ArrowRight' || k === 'k' || k === 'K') {
      var link = document.getElementById(k === 'ArrowLeft' || k === 'j' || k === 'J' ? 'judge-prev' : 'judge-next');
      if (link) { e.preventDefault(); location.href = link.href; }
    }
  });
}());
