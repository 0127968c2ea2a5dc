// The flow page's Copy buttons: each copies its data-copy text (a platform URL with
// its secret, which the page shows masked). Without a clipboard they stay hidden.
(function () {
  "use strict";
  if (!navigator.clipboard) return;
  document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(button.dataset.copy).then(
        function () { say(button, "Copied"); },
        function () { say(button, "Not copied"); }
      );
    });
  });
  function say(button, text) {
    var label = button.firstChild;
    label.textContent = text;
    setTimeout(function () { label.textContent = "Copy"; }, 2000);
  }
})();
