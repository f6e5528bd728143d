/* The submission page: show the file inputs the chosen kind needs, preview a chosen photo,
 * record a song in the browser (MediaRecorder) and put the recording into the form's file
 * field, so the form is sent as an ordinary multipart POST (which works without script). */
(function () {
  'use strict';
  var form = document.getElementById('vm-submit');
  if (!form) return;
  var imageBox = form.querySelector('[data-for="image"]');
  var audioBox = form.querySelector('[data-for="audio"]');
  var image = document.getElementById('f-image');
  var camera = document.getElementById('f-camera');
  var audioInput = document.getElementById('f-audio');

  function kind() {
    var checked = form.querySelector('input[name="kind"]:checked');
    return checked ? checked.value : '';
  }
  function update() {
    var k = kind();
    var song = k === 'song';
    imageBox.hidden = song;
    audioBox.hidden = !song;
    // Only the inputs of the chosen kind are sent.
    image.disabled = camera.disabled = song;
    audioInput.disabled = !song;
    image.required = (k === 'painting' || k === 'photo') && !camera.files.length;
    audioInput.required = song && !audioInput.files.length;
  }
  Array.prototype.forEach.call(form.querySelectorAll('input[name="kind"]'), function (r) {
    r.addEventListener('change', update);
  });

  var preview = document.getElementById('f-image-preview');
  function showPreview(input) {
    var file = input.files && input.files[0];
    if (!file || !window.URL) return;
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
    if (input === camera) image.value = '';
    else camera.value = '';
    update();
  }
  image.addEventListener('change', function () { showPreview(image); });
  camera.addEventListener('change', function () { showPreview(camera); });
  audioInput.addEventListener('change', update);

  // --- recording --------------------------------------------------------------------------
  var recorderBox = audioBox.querySelector('.vm-recorder');
  var button = document.getElementById('f-record');
  var status = document.getElementById('f-rec-status');
  var timeEl = document.getElementById('f-rec-time');
  var player = document.getElementById('f-rec-preview');
  var canRecord = !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia &&
    window.MediaRecorder && window.DataTransfer);
  recorderBox.hidden = false;
  if (!canRecord) {
    button.hidden = true;
    status.textContent = status.getAttribute('data-unavailable');
  }
  var rec = null, chunks = [], started = 0, ticker = null;
  function setRecording(on) {
    button.setAttribute('aria-pressed', on ? 'true' : 'false');
    button.textContent = (on ? '■ ' + button.getAttribute('data-stop')
      : '● ' + button.getAttribute('data-record'));
  }
  button.addEventListener('click', function () {
    if (rec && rec.state === 'recording') {
      rec.stop();
      return;
    }
    navigator.mediaDevices.getUserMedia({audio: true}).then(function (stream) {
      chunks = [];
      rec = new MediaRecorder(stream);
      rec.ondataavailable = function (e) { if (e.data.size) chunks.push(e.data); };
      rec.onstop = function () {
        stream.getTracks().forEach(function (tr) { tr.stop(); });
        clearInterval(ticker);
        setRecording(false);
        var type = rec.mimeType || 'audio/webm';
        var ext = type.indexOf('mp4') >= 0 ? 'm4a' : type.indexOf('ogg') >= 0 ? 'ogg' : 'webm';
        var blob = new Blob(chunks, {type: type});
        var dt = new DataTransfer();
        dt.items.add(new File([blob], 'recording.' + ext, {type: type}));
        audioInput.files = dt.files;
        player.src = URL.createObjectURL(blob);
        player.hidden = false;
        status.textContent = status.getAttribute('data-done');
        update();
      };
      rec.start();
      started = Date.now();
      setRecording(true);
      ticker = setInterval(function () {
        var s = Math.round((Date.now() - started) / 1000);
        timeEl.textContent = Math.floor(s / 60) + ':' + ('0' + (s % 60)).slice(-2);
      }, 500);
    }).catch(function () {
      status.textContent = status.getAttribute('data-unavailable');
    });
  });

  form.addEventListener('submit', function () {
    var send = form.querySelector('.vm-send');
    send.textContent = send.getAttribute('data-sending');
    setTimeout(function () { send.disabled = true; }, 0);
  });
  update();
}());
