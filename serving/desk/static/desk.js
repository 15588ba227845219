// Live search as you type: the results are fetched as server-rendered HTML and swapped in. Without
// JavaScript the search form works as a plain GET; nothing else on the desk needs a script.
document.addEventListener("DOMContentLoaded", () => {
  const input = document.querySelector("input[data-live]");
  const results = document.getElementById("results");
  if (!input || !results) return;
  let timer = null;
  let latest = 0;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const asked = ++latest;
      const response = await fetch(input.dataset.live + encodeURIComponent(input.value), {credentials: "same-origin"});
      if (response.ok && asked === latest) {
        results.innerHTML = await response.text();
        history.replaceState(null, "", "/desk/search?q=" + encodeURIComponent(input.value));
      }
    }, 200);
  });
});
