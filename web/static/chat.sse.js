// Server-sent events over fetch(): the token travels in the Authorization header, never in a URL.
// Shared by the customer chat page and the agent console; exposes window.FrontdeskSSE.
(function () {
  "use strict";

  // Reads one SSE response to its end, calling onEvent({type, data, id}) per event.
  // Resolves when the server closes the stream; rejects on network errors or a non-2xx answer.
  async function readEvents(url, { token, lastEventId, signal, onOpen, onEvent }) {
    const headers = { Accept: "text/event-stream" };
    if (token) headers.Authorization = "Bearer " + token;
    if (lastEventId) headers["Last-Event-ID"] = lastEventId;
    const response = await fetch(url, { headers, signal, cache: "no-store" });
    if (!response.ok || !response.body) {
      const err = new Error("the live stream answered " + response.status);
      err.status = response.status;
      throw err;
    }
    if (onOpen) onOpen();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let type = "";
    let data = [];
    let id = lastEventId || null;
    const dispatch = () => {
      if (data.length) onEvent({ type: type || "message", data: data.join("\n"), id });
      type = "";
      data = [];
    };
    const line = (text) => {
      if (text === "") { dispatch(); return; }
      if (text.startsWith(":")) return; // a comment (keep-alive)
      const colon = text.indexOf(":");
      const field = colon < 0 ? text : text.slice(0, colon);
      let value = colon < 0 ? "" : text.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") type = value;
      else if (field === "data") data.push(value);
      else if (field === "id" && !value.includes("\0")) id = value;
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return id;
      buffer += value;
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        line(buffer.slice(0, nl).replace(/\r$/, ""));
        buffer = buffer.slice(nl + 1);
      }
    }
  }

  // A stream that reconnects with back-off (1 s doubling up to 30 s) and resumes from the last event id.
  // onState(state, error): "connecting", "open", "retrying" (with the error or null), "stopped".
  // A 401/403 stops for good and calls onState("stopped", error) so the caller can ask to log in again.
  function liveStream(url, { token, onEvent, onState }) {
    const controller = new AbortController();
    let lastEventId = null;
    let stopped = false;
    let delay = 1000;
    let timer = null;
    const state = (name, error) => { if (onState) onState(name, error || null); };

    async function connect() {
      if (stopped) return;
      state("connecting");
      let error = null;
      try {
        lastEventId = await readEvents(url, {
          token: typeof token === "function" ? token() : token,
          lastEventId,
          signal: controller.signal,
          onOpen: () => { delay = 1000; state("open"); },
          onEvent: (event) => {
            lastEventId = event.id || lastEventId;
            let parsed = null;
            try { parsed = JSON.parse(event.data); } catch (e) { return; }
            try { onEvent(event.type, parsed); } catch (e) { console.error("live event handler failed", e); }
          },
        }) || lastEventId;
      } catch (e) {
        error = e;
      }
      if (stopped) return;
      if (error && (error.status === 401 || error.status === 403)) {
        stopped = true;
        state("stopped", error);
        return;
      }
      state("retrying", error);
      timer = setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    }

    connect();
    return {
      stop() {
        if (stopped) return;
        stopped = true;
        clearTimeout(timer);
        controller.abort();
        state("stopped");
      },
    };
  }

  window.FrontdeskSSE = { readEvents, liveStream };
})();
