"""The built-in chat page: self-contained HTML that follows the studio's chat over SSE."""

from __future__ import annotations

import html
import json

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Chat: __TITLE__</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 0; display: flex; flex-direction: column;
         height: 100vh; background: #111; color: #eee; }
  header { padding: .6em 1em; background: #222; font-weight: 600; }
  #status { font-weight: 400; color: #aaa; margin-left: .5em; }
  #messages { flex: 1; overflow-y: auto; list-style: none; margin: 0; padding: .5em 1em; }
  #messages li { margin: .2em 0; word-wrap: break-word; }
  .author { font-weight: 600; color: #8cf; margin-right: .4em; }
  .platform { color: #888; font-size: 80%; margin-right: .4em; }
  form { display: flex; gap: .4em; padding: .6em 1em; background: #222; }
  input { padding: .4em; border-radius: 4px; border: 1px solid #444; background: #000;
          color: #eee; }
  #text { flex: 1; }
</style>
</head>
<body>
<header>__TITLE__<span id="status">connecting…</span></header>
<ul id="messages" aria-live="polite"></ul>
<form id="send">
  <input id="author" placeholder="Your name" maxlength="200" required>
  <input id="text" placeholder="Say something" maxlength="2000" required autocomplete="off">
  <button type="submit">Send</button>
</form>
<script>
const config = __CONFIG__;
const list = document.getElementById("messages");
const status = document.getElementById("status");
const seen = new Set();
function show(message) {
  if (seen.has(message.id)) return;
  seen.add(message.id);
  const item = document.createElement("li");
  item.dataset.id = message.id;
  const platform = document.createElement("span");
  platform.className = "platform";
  platform.textContent = message.platform;
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = message.authorDisplayName;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = message.text;
  item.append(platform, author, text);
  list.append(item);
  list.scrollTop = list.scrollHeight;
}
const events = new EventSource(config.eventsUrl);
events.addEventListener("message", (e) => show(JSON.parse(e.data)));
events.onopen = () => { status.textContent = "live"; };
events.onerror = () => { status.textContent = "reconnecting…"; };
document.getElementById("send").addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = document.getElementById("text");
  const reply = await fetch(config.postUrl, {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({authorDisplayName: document.getElementById("author").value,
                          text: text.value})});
  if (reply.ok) text.value = "";
  else status.textContent = "not sent: " + (await reply.json()).error.message;
});
</script>
</body>
</html>
"""


def render(title: str, events_url: str, post_url: str) -> str:
    config = json.dumps({"eventsUrl": events_url, "postUrl": post_url}).replace("<", "\\u003c")
    return PAGE.replace("__TITLE__", html.escape(title)).replace("__CONFIG__", config)
