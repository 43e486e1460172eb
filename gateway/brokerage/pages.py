"""Punch's server-rendered pages: landing, dashboard, QR. Self-contained: no external assets."""

from __future__ import annotations

import io
import json
from html import escape

import segno

_STYLE = """
body{font-family:system-ui,sans-serif;margin:0;background:#0f1115;color:#e6e6e6}
main{max-width:960px;margin:0 auto;padding:24px}
h1{font-size:1.6rem;margin:0 0 8px}h2{font-size:1.15rem;margin:24px 0 8px}
input,button,select{font:inherit;padding:6px 10px;border-radius:6px;border:1px solid #444;
background:#1b1e25;color:#e6e6e6}button{cursor:pointer;background:#2d5bd7;border-color:#2d5bd7}
label{display:block;margin:8px 0 4px}.card{background:#181b22;border:1px solid #2a2f3a;
border-radius:10px;padding:16px;margin:12px 0}.muted{color:#9aa3b2}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #2a2f3a;padding:6px;
text-align:left}code,pre{background:#11141a;padding:2px 4px;border-radius:4px;
white-space:pre-wrap;word-break:break-all}.state{font-weight:700}
.tally-program{color:#ff4d4d}.tally-preview{color:#3ecf5b}
"""


def _page(title: str, body: str, script: str = "") -> str:
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main><script>{script}</script></body></html>"
    )


def landing(*, turnstile: bool) -> str:
    note = (
        "<p class=\"muted\">This deployment verifies a Turnstile token; "
        "paste it below.</p><label for=\"ts\">Turnstile token</label>"
        "<input id=\"ts\" name=\"turnstileToken\">"
        if turnstile else ""
    )
    body = f"""
<h1>Punch</h1>
<p class="muted">SRT session brokerage: two endpoints find each other and connect in
rendezvous mode, without exchanging IPs by hand; a relay takes over when hole punching
fails.</p>
<form id="create" class="card">
  <label for="name">Session name</label>
  <input id="name" name="name" required pattern="[A-Za-z0-9][A-Za-z0-9._-]{{0,63}}">
  <label for="streams">Streams (comma separated, optional)</label>
  <input id="streams" name="streams" placeholder="default">
  <label for="latency">Latency (ms)</label>
  <input id="latency" name="latency" type="number" min="20" max="8000" value="200">
  <label for="ttl">Lifetime (s)</label>
  <input id="ttl" name="ttl" type="number" min="60" max="86400" value="1800">
  {note}
  <p><button type="submit">Create session</button></p>
  <p id="result" class="muted"></p>
</form>
<div class="card"><h2>How it works</h2><ol>
<li>Create a session; keep the admin link, share the session link.</li>
<li>Each side joins a stream with its local SRT port.</li>
<li>Both get each other's public address and the passphrase, and connect in rendezvous
mode; ready-made commands for FFmpeg, OBS, vMix, GStreamer and srt-live-transmit.</li>
</ol></div>"""
    script = """
document.getElementById('create').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target, out = document.getElementById('result');
  const body = {name: form.name.value, latency: Number(form.latency.value),
                ttl: Number(form.ttl.value)};
  const streams = form.streams.value.split(',').map(s => s.trim()).filter(Boolean);
  if (streams.length) body.streams = streams;
  if (form.turnstileToken) body.turnstileToken = form.turnstileToken.value;
  const reply = await fetch('/api/session', {method: 'POST',
    headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
  const data = await reply.json();
  if (!reply.ok) { out.textContent = data.error + ': ' + data.message; return; }
  location.href = '/s/' + encodeURIComponent(data.session) + '?t=' +
    encodeURIComponent(data.token);
});"""
    return _page("Punch", body, script)


def dashboard(name: str, peer_tokens: dict[str, str], *, admin_token: str | None,
              qr_url: str, dashboard_url: str) -> str:
    streams = list(peer_tokens)
    rows = "".join(
        f"<tr data-stream=\"{escape(s)}\"><td>{escape(s)}</td>"
        f"<td class=\"sstate\">WAITING</td><td class=\"peers\">0</td>"
        f"<td class=\"tally\">off</td><td class=\"health\"></td></tr>"
        for s in streams
    )
    options = "".join(f"<option>{escape(s)}</option>" for s in streams)
    observer = admin_token is not None
    tally = (
        "<div class=\"card\"><h2>Tally</h2><select id=\"tstream\">" + options + "</select> "
        "<select id=\"tstate\"><option>off</option><option>preview</option>"
        "<option>program</option></select> <button id=\"tset\">Set</button></div>"
        if observer else ""
    )
    body = f"""
<h1>Session <code>{escape(name)}</code></h1>
<p>State: <span id="state" class="state">…</span>
{'<span class="muted">(observer)</span>' if observer else ''}</p>
<div class="card"><table><thead><tr><th>Stream</th><th>State</th><th>Peers</th>
<th>Tally</th><th>Health</th></tr></thead><tbody id="streams">{rows}</tbody></table></div>
<div class="card"><h2>Join</h2>
<label for="jstream">Stream</label><select id="jstream">{options}</select>
<label for="jport">Local SRT port</label>
<input id="jport" type="number" min="1024" max="65535" value="9000">
<label for="jrole">This side</label>
<select id="jrole"><option value="sender">sends</option>
<option value="receiver">receives</option></select>
<p><button id="join">Join</button></p>
<p id="joined" class="muted"></p><pre id="peerinfo"></pre>
<div id="commands"></div></div>
{tally}
<div class="card"><h2>Share</h2><p><code>{escape(dashboard_url)}</code></p>
<img src="{escape(qr_url)}" alt="QR code" width="160" height="160"></div>
<div class="card"><h2>Events</h2><pre id="log"></pre></div>"""
    config = json.dumps(
        {"session": name, "peerTokens": peer_tokens, "adminToken": admin_token}
    ).replace("</", "<\\/")
    script = f"""
const CFG = {config};
const wsBase = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host +
  '/api/ws/' + encodeURIComponent(CFG.session) + '?t=';
const $ = (id) => document.getElementById(id);
const row = (s) => document.querySelector('tr[data-stream="' + CSS.escape(s) + '"]');
function log(msg) {{ $('log').textContent = JSON.stringify(msg) + '\\n' + $('log').textContent; }}
function show(msg) {{
  log(msg);
  if (msg.type === 'state') $('state').textContent = msg.state;
  if (msg.type === 'peer_match' && row(msg.stream)) {{
    row(msg.stream).querySelector('.peers').textContent = String(msg.peers.length);
    row(msg.stream).querySelector('.sstate').textContent = 'READY';
  }}
  if (msg.type === 'tally' && row(msg.stream)) {{
    const cell = row(msg.stream).querySelector('.tally');
    cell.textContent = msg.state; cell.className = 'tally tally-' + msg.state;
  }}
  if (msg.type === 'health' && row(msg.stream))
    row(msg.stream).querySelector('.health').textContent = msg.peer + ': ' + msg.status +
      (msg.rtt !== undefined ? ' rtt ' + msg.rtt + 'ms' : '');
  if (msg.type === 'peer') $('peerinfo').textContent = 'Peer: ' + msg.host + ':' + msg.port +
      '\\nPassphrase: ' + msg.passphrase + '\\nLatency: ' + msg.latency + ' ms (rendezvous)';
  if (msg.type === 'registered') {{
    joined.stream = msg.stream; joined.peer = msg.peer;
    $('joined').textContent = 'Joined ' + msg.stream + ' as peer ' + msg.peer;
  }}
  if ((msg.type === 'peer' || msg.type === 'relay') && joined.peer) commands();
  if (msg.type === 'state' || msg.type === 'peer_match') refresh();
}}
const joined = {{stream: null, peer: null, role: 'sender'}};
async function commands() {{
  // `role` is peer a's role: flip it when this side is peer b
  const roleA = joined.peer === 'a' ? joined.role :
    (joined.role === 'sender' ? 'receiver' : 'sender');
  const reply = await fetch('/api/session/' + encodeURIComponent(CFG.session) +
    '/connect?stream=' + encodeURIComponent(joined.stream) + '&role=' + roleA,
    {{headers: {{Authorization: 'Bearer ' + CFG.peerTokens[joined.stream]}}}});
  if (!reply.ok) return;
  const mine = (await reply.json())['for_peer_' + joined.peer];
  const box = $('commands'); box.textContent = '';
  for (const [format, text] of Object.entries(mine)) {{
    const title = document.createElement('h3'); title.textContent = format;
    const pre = document.createElement('pre'); pre.textContent = text;
    pre.dataset.format = format; box.append(title, pre);
  }}
}}
async function refresh() {{
  const token = CFG.adminToken || CFG.peerTokens[Object.keys(CFG.peerTokens)[0]];
  const reply = await fetch('/api/session/' + encodeURIComponent(CFG.session),
    {{headers: {{Authorization: 'Bearer ' + token}}}});
  if (!reply.ok) return;
  const data = await reply.json();
  $('state').textContent = data.state;
  for (const [name, s] of Object.entries(data.streams)) {{
    const r = row(name); if (!r) continue;
    r.querySelector('.sstate').textContent = s.state;
    r.querySelector('.peers').textContent = String(s.peers);
    if (s.tally) r.querySelector('.tally').textContent = s.tally;
  }}
}}
function open(token, onopen) {{
  const ws = new WebSocket(wsBase + encodeURIComponent(token));
  ws.onmessage = (event) => show(JSON.parse(event.data));
  if (onopen) ws.onopen = () => onopen(ws);
  return ws;
}}
let observer = null;
if (CFG.adminToken) observer = open(CFG.adminToken);
$('join').addEventListener('click', () => {{
  const stream = $('jstream').value, port = Number($('jport').value);
  joined.role = $('jrole').value;
  open(CFG.peerTokens[stream], (ws) => ws.send(JSON.stringify(
    {{type: 'register', port: port, stream: stream}})));
}});
if ($('tset')) $('tset').addEventListener('click', () => observer.send(JSON.stringify(
  {{type: 'tally', stream: $('tstream').value, state: $('tstate').value}})));
refresh();
"""
    return _page(f"Punch: {name}", body, script)


def qr_svg(url: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind="svg", scale=8, border=4,
                                    dark="#000", light="#fff", xmldecl=True)
    return buffer.getvalue()
