// A2World teleop page: WebXR poses -> teleop protocol (msgpack) over a WebSocket; status back as JSON.
"use strict";

// ---- msgpack encoder for the protocol's types (map, array, string, float64, int, bool, nil) ----
function packInto(out, v) {
  if (v === null || v === undefined) { out.push(0xc0); return; }
  if (v === true) { out.push(0xc3); return; }
  if (v === false) { out.push(0xc2); return; }
  if (typeof v === "number") {
    if (Number.isInteger(v) && v >= 0 && v < 0x100000000) {
      if (v < 128) out.push(v);
      else { out.push(0xce, (v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255); }
      return;
    }
    const b = new DataView(new ArrayBuffer(8)); b.setFloat64(0, v);
    out.push(0xcb); for (let i = 0; i < 8; i++) out.push(b.getUint8(i)); return;
  }
  if (typeof v === "string") {
    const s = new TextEncoder().encode(v);
    if (s.length < 32) out.push(0xa0 | s.length); else out.push(0xd9, s.length);
    for (const c of s) out.push(c); return;
  }
  if (Array.isArray(v)) {
    out.push(0x90 | v.length); for (const x of v) packInto(out, x); return;
  }
  const keys = Object.keys(v);
  out.push(0x80 | keys.length);
  for (const k of keys) { packInto(out, k); packInto(out, v[k]); }
}
function pack(v) { const out = []; packInto(out, v); return new Uint8Array(out); }

// ---- connection ----
const state = { ws: null, seq: 0, connected: false, sent: 0, status: null, xr: null };
function now() { return (performance.timeOrigin + performance.now()) / 1000.0; }
function send(msg) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
  state.ws.send(pack(msg)); state.sent++; return true;
}
function sendFrame(headset, left, right) {
  return send({ v: 1, kind: "frame", seq: state.seq++, t: now(), headset: headset, left: left, right: right });
}
function sendCommand(command, text) {
  const msg = { v: 1, kind: "command", seq: state.seq++, t: now(), command: command };
  if (text) msg.text = text;
  return send(msg);
}
function connect() {
  const ws = new WebSocket(`wss://${location.host}/ws`);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => { state.connected = true; document.getElementById("link").textContent = "connected"; };
  ws.onclose = () => {
    state.connected = false; document.getElementById("link").textContent = "disconnected: retrying";
    setTimeout(connect, 1000);
  };
  ws.onmessage = (ev) => { if (typeof ev.data === "string") showStatus(JSON.parse(ev.data)); };
  state.ws = ws;
}

// ---- status view (and haptics when the guard clamps an arm) ----
function setText(id, text, cls) { const el = document.getElementById(id); el.textContent = text; if (cls) el.className = cls; }
function showStatus(s) {
  state.status = s;
  for (const arm of ["left", "right"]) {
    const on = s.engaged && s.engaged[arm];
    setText(`s-${arm}`, on ? "ENGAGED" : "released", on ? "on" : "off");
  }
  setText("s-recording", s.recording ? `episode ${s.episode}: ${s.instruction}` : "no", s.recording ? "on" : "off");
  setText("s-episodes", `${s.episodes_saved} / ${s.episodes_discarded}`);
  setText("s-guard", String(s.guard_interventions), s.guard_interventions ? "warn" : "");
  const clamped = Object.entries(s.clamped || {}).filter(([, r]) => r.length).map(([a, r]) => `${a}: ${r.join(", ")}`);
  setText("s-clamped", clamped.length ? clamped.join("; ") : "-", clamped.length ? "warn" : "");
  const dropped = Object.values(s.dropped || {}).reduce((a, b) => a + b, 0);
  setText("s-input", `${s.accepted} / ${dropped}`);
  setText("s-last", s.last_message || "");
  if (state.xr) pulse(s.clamped || {});
}
function pulse(clamped) {
  for (const src of state.xr.session.inputSources) {
    const arm = src.handedness;
    const act = src.gamepad && src.gamepad.hapticActuators && src.gamepad.hapticActuators[0];
    if (act && clamped[arm] && clamped[arm].length) act.pulse(0.4, 40);
  }
}

// ---- WebXR: poses and buttons of both controllers every frame ----
const BUTTONS = { left: { 3: "thumbstick", 4: "x", 5: "y" }, right: { 3: "thumbstick", 4: "a", 5: "b" } };
function poseOf(p) {
  const t = p.transform.position, q = p.transform.orientation;
  return [t.x, t.y, t.z, q.x, q.y, q.z, q.w];
}
function onXRFrame(time, frame) {
  const xr = state.xr; xr.session.requestAnimationFrame(onXRFrame);
  const viewer = frame.getViewerPose(xr.space);
  if (!viewer) return;
  const ctrl = {};
  for (const src of xr.session.inputSources) {
    if (!src.gripSpace || !(src.handedness in BUTTONS)) continue;
    const pose = frame.getPose(src.gripSpace, xr.space);
    if (!pose) continue;
    const gp = src.gamepad, buttons = {};
    for (const [i, name] of Object.entries(BUTTONS[src.handedness])) buttons[name] = !!(gp && gp.buttons[i] && gp.buttons[i].pressed);
    ctrl[src.handedness] = { pose: poseOf(pose), trigger: gp ? gp.buttons[0].value : 0, grip: gp ? gp.buttons[1].value : 0, buttons: buttons };
  }
  if (ctrl.left && ctrl.right) sendFrame(poseOf(viewer), ctrl.left, ctrl.right);
}
async function enterVR() {
  const session = await navigator.xr.requestSession("immersive-vr", { requiredFeatures: ["local-floor"] });
  const canvas = document.createElement("canvas");
  const gl = canvas.getContext("webgl", { xrCompatible: true });
  session.updateRenderState({ baseLayer: new XRWebGLLayer(session, gl) });
  state.xr = { session: session, space: await session.requestReferenceSpace("local-floor") };
  session.addEventListener("end", () => { state.xr = null; });
  session.requestAnimationFrame(onXRFrame);
}

// ---- page wiring; the non-XR test mode exposes the sender for scripted streams ----
for (const b of document.querySelectorAll("button[data-command]")) b.onclick = () => sendCommand(b.dataset.command);
document.getElementById("set-instruction").onclick = () => {
  const text = document.getElementById("instruction").value.trim();
  if (text) sendCommand("instruction", text);
};
if (navigator.xr) {
  navigator.xr.isSessionSupported("immersive-vr").then((ok) => {
    const b = document.getElementById("enter-vr"); b.disabled = !ok; b.onclick = enterVR;
  });
}
window.a2teleop = { state: state, sendFrame: sendFrame, sendCommand: sendCommand, pack: pack,
                    testMode: new URLSearchParams(location.search).has("test") };
if (window.a2teleop.testMode) document.getElementById("link").textContent += " (test mode)";
connect();
