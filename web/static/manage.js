// The /manage upload form: record in the browser with MediaRecorder when the browser can,
// and send the recording through the same endpoint as an uploaded file. Its messages are
// the page's, in the page's language (data-t-* attributes of the form).
(function () {
  "use strict";
  var form = document.getElementById("upload");
  if (!form) return;
  var box = form.querySelector(".recorder");
  var recordBtn = document.getElementById("record");
  var stopBtn = document.getElementById("stop");
  var preview = document.getElementById("preview");
  var elapsed = document.getElementById("elapsed");
  var result = document.getElementById("result");
  var recorder = null, chunks = [], blob = null, started = 0, timer = null;

  function pickType() {
    var types = ["audio/webm;codecs=opus", "audio/mp4", "audio/ogg;codecs=opus", "audio/webm"];
    for (var i = 0; i < types.length; i++) {
      if (window.MediaRecorder && MediaRecorder.isTypeSupported(types[i])) return types[i];
    }
    return "";
  }

  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.MediaRecorder) {
    box.hidden = false;
  }

  recordBtn.addEventListener("click", function () {
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
      var type = pickType();
      recorder = type ? new MediaRecorder(stream, { mimeType: type }) : new MediaRecorder(stream);
      chunks = [];
      recorder.ondataavailable = function (e) { if (e.data.size) chunks.push(e.data); };
      recorder.onstop = function () {
        stream.getTracks().forEach(function (t) { t.stop(); });
        blob = new Blob(chunks, { type: recorder.mimeType || "audio/webm" });
        preview.src = URL.createObjectURL(blob);
        preview.hidden = false;
        clearInterval(timer);
      };
      recorder.start(1000);
      started = Date.now();
      timer = setInterval(function () {
        elapsed.textContent = Math.round((Date.now() - started) / 1000) + " s";
      }, 500);
      recordBtn.disabled = true;
      stopBtn.disabled = false;
    }).catch(function (err) {
      result.textContent = form.dataset.tMic + " " + err.message;
    });
  });

  stopBtn.addEventListener("click", function () {
    if (recorder && recorder.state !== "inactive") recorder.stop();
    recordBtn.disabled = false;
    stopBtn.disabled = true;
  });

  form.addEventListener("submit", function (e) {
    var fileInput = document.getElementById("file");
    if (!blob || (fileInput.files && fileInput.files.length)) return;  // a normal upload
    e.preventDefault();
    var data = new FormData(form);
    var ext = (blob.type.indexOf("mp4") >= 0) ? "m4a" : (blob.type.indexOf("ogg") >= 0 ? "ogg" : "webm");
    data.set("file", blob, "recording." + ext);
    result.textContent = form.dataset.tUploading;
    fetch(form.action, { method: "POST", body: data, headers: { "Accept": "application/json" },
                         credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (body) { return [r.status, body]; }); })
      .then(function (res) {
        // Uploaded: the venue page shows the new clip at the top with its processed result.
        if (res[0] === 201) { window.location.assign(res[1].page); }
        else { result.textContent = form.dataset.tFailed + " " + (res[1].message || res[1].error); }
      })
      .catch(function (err) { result.textContent = form.dataset.tFailed + " " + err.message; });
  });
})();
