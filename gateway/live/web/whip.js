// Minimal WHIP/WHEP client (RFC 9725): POST the offer at once, trickle candidates with
// PATCH (application/trickle-ice-sdpfrag), DELETE the session resource to stop.
"use strict";

const LiveApi = {
  params() {
    const query = new URLSearchParams(location.search);
    return {
      room: query.get("room") || localStorage.getItem("live.room") || "demo",
      token: query.get("token") || localStorage.getItem("live.token") || "",
      autostart: query.get("autostart") === "1",
    };
  },

  remember(room, token) {
    localStorage.setItem("live.room", room);
    localStorage.setItem("live.token", token);
  },

  headers(token, extra) {
    const headers = Object.assign({}, extra || {});
    if (token) headers["Authorization"] = "Bearer " + token;
    return headers;
  },

  async bootstrap() {
    try {
      const response = await fetch("/api/bootstrap");
      return response.ok ? await response.json() : { iceServers: [] };
    } catch (e) {
      return { iceServers: [] };
    }
  },

  async errorText(response) {
    const text = await response.text();
    try { return JSON.parse(text).error || text; } catch (e) { return text.trim(); }
  },

  // Negotiates `pc` against `endpoint`; returns the session with stop().
  async negotiate(pc, endpoint, token, log) {
    const pending = [];
    let resource = null;
    let done = false;
    const flush = async () => {
      if (!resource || !pending.length) return;
      const candidates = pending.splice(0);
      const local = pc.localDescription.sdp;
      const ufrag = /a=ice-ufrag:(.*)/.exec(local)[1].trim();
      const pwd = /a=ice-pwd:(.*)/.exec(local)[1].trim();
      const byMid = {};
      for (const c of candidates) (byMid[c.sdpMid] = byMid[c.sdpMid] || []).push(c);
      let frag = "a=ice-ufrag:" + ufrag + "\r\na=ice-pwd:" + pwd + "\r\n";
      for (const mid of Object.keys(byMid)) {
        frag += "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:" + mid + "\r\n";
        for (const c of byMid[mid]) {
          if (c.candidate) frag += "a=" + c.candidate + "\r\n";
          else frag += "a=end-of-candidates\r\n";
        }
      }
      const response = await fetch(resource, {
        method: "PATCH",
        headers: LiveApi.headers(token, { "Content-Type": "application/trickle-ice-sdpfrag" }),
        body: frag,
      });
      log("trickled " + candidates.length + " candidate(s): " + response.status);
    };
    pc.onicecandidate = (event) => {
      pending.push(event.candidate || { sdpMid: pc.getTransceivers()[0].mid, candidate: null });
      flush();
    };
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const response = await fetch(endpoint, {
      method: "POST",
      headers: LiveApi.headers(token, { "Content-Type": "application/sdp" }),
      body: pc.localDescription.sdp,
    });
    if (response.status !== 201) {
      throw new Error(response.status + " " + (await LiveApi.errorText(response)));
    }
    resource = new URL(response.headers.get("Location"), location.href).href;
    await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
    await flush();
    return {
      resource,
      async stop() {
        if (done) return;
        done = true;
        pc.close();
        await fetch(resource, { method: "DELETE", headers: LiveApi.headers(token) });
      },
    };
  },
};
