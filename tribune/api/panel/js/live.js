// The room's WebSocket: a snapshot, then numbered events. On a drop it reconnects with
// ?since=<last seq>&epoch=<epoch> so nothing is missed; a new epoch (service restart) or a
// lost backlog brings a fresh snapshot, which replaces everything the page knew.
const RETRY_MS = [250, 500, 1000, 2000, 3000];

export class LiveRoom {
  constructor({ onSnapshot, onEvent, onConnection }) {
    this.onSnapshot = onSnapshot;
    this.onEvent = onEvent;
    this.onConnection = onConnection;
    this.seq = null;
    this.epoch = null;
    this.socket = null;
    this.attempt = 0;
    this.connected = false;
    this.timer = null;
  }

  start() {
    this.connect();
    // A kiosk that wakes from sleep or regains the network should not wait for the backoff.
    window.addEventListener("online", () => this.retryNow());
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) this.retryNow();
    });
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const resume = this.seq !== null && this.epoch !== null
      ? `?since=${this.seq}&epoch=${encodeURIComponent(this.epoch)}`
      : "";
    return `${scheme}//${location.host}/api/v1/ws${resume}`;
  }

  connect() {
    clearTimeout(this.timer);
    this.timer = null;
    let socket;
    try {
      socket = new WebSocket(this.url());
    } catch {
      this.scheduleRetry();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      this.attempt = 0;
      // Resuming: the missed events follow at once. New: the snapshot follows at once.
      if (this.seq !== null) this.setConnected(true);
    };
    socket.onmessage = (message) => this.receive(socket, message.data);
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.setConnected(false);
      this.scheduleRetry();
    };
    socket.onerror = () => socket.close();
  }

  receive(socket, text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (message.type === "snapshot") {
      this.seq = message.seq;
      this.epoch = message.epoch;
      this.onSnapshot(message.room);
      this.setConnected(true);
      return;
    }
    if (message.type !== "event") return;
    if (this.seq !== null && message.seq <= this.seq) return;
    if (this.seq !== null && message.seq > this.seq + 1) {
      // A gap: reconnect from the last event we have; the service fills it in.
      socket.close();
      return;
    }
    this.seq = message.seq;
    this.onEvent(message);
  }

  setConnected(connected) {
    if (this.connected === connected) return;
    this.connected = connected;
    this.onConnection(connected);
  }

  scheduleRetry() {
    if (this.timer !== null) return;
    const delay = RETRY_MS[Math.min(this.attempt, RETRY_MS.length - 1)];
    this.attempt += 1;
    this.timer = setTimeout(() => this.connect(), delay);
  }

  retryNow() {
    if (this.socket === null) {
      this.attempt = 0;
      this.connect();
    }
  }
}
