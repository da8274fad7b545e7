"use strict";
// Inline mode in the web chat, as in Telegram: "@bot word" in the input asks the bot (an inline
// query) while typing; its results show in #inline-results above the input; a click posts the
// result into this chat. Put into chat.html before its own script, whose helpers (el, post, toast,
// botUsername) these functions use when they run.
let inlineQueryId = null, inlineAsked = null, inlineTimer = null, inlineLast = null;
function inlineQueryOf(value) {
  const m = /^@(\w+)\s([\s\S]*)$/.exec(value);
  if (!m) return null;
  const name = m[1].toLowerCase();
  if (botUsername && name !== botUsername.toLowerCase() && name !== "bot") return null;
  return m[2];
}
function hideInline() {
  clearTimeout(inlineTimer);
  inlineQueryId = null; inlineAsked = null;
  const panel = document.getElementById("inline-results");
  panel.hidden = true; panel.replaceChildren();
}
function inlineStatus(text) {
  const panel = document.getElementById("inline-results");
  panel.replaceChildren(el("div", "inline-status", text));
  panel.hidden = false;
}
document.getElementById("text").addEventListener("input", (ev) => {
  const query = inlineQueryOf(ev.target.value);
  if (query === null) { hideInline(); return; }
  clearTimeout(inlineTimer);
  inlineTimer = setTimeout(async () => {
    if (query === inlineAsked) return;
    inlineAsked = query;
    inlineStatus("Бот сочиняет…");
    try {
      inlineQueryId = (await post("/ui/inline", {query})).inline_query_id;
      renderInline(inlineLast);  // a cached answer may have come with the poll already
    } catch (e) { inlineStatus("Не отправилось: " + e.message); }
  }, 300);
});
function renderInline(state) {
  inlineLast = state;
  if (!state || state.id !== inlineQueryId) return;
  if (state.status === "waiting") { inlineStatus("Бот сочиняет…"); return; }
  if (state.status === "expired") { inlineStatus("Бот не ответил. Допиши что-нибудь."); return; }
  const panel = document.getElementById("inline-results");
  panel.replaceChildren();
  for (const result of state.results) {
    const item = el("button", "inline-result");
    item.type = "button"; item.dataset.resultId = result.id;
    item.appendChild(el("span", "title", result.title));
    if (result.description) item.appendChild(el("span", "description", result.description));
    item.onclick = () => chooseInline(state.id, result.id);
    panel.appendChild(item);
  }
  if (!state.results.length) panel.appendChild(el("div", "inline-status", "Ничего не нашлось."));
  panel.hidden = false;
}
async function chooseInline(queryId, resultId) {
  try {
    await post("/ui/choose", {inline_query_id: queryId, result_id: resultId});
    document.getElementById("text").value = "";
    hideInline();
  } catch (e) { toast("Не отправилось: " + e.message); }
}
