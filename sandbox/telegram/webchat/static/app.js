/* The sandbox web chat: a Telegram-like chat with the bot, driven by the emulator's /chat/api/.
 *
 * Safety rule: nothing the bot sends is ever parsed as HTML. Texts are rendered from text + entities by
 * building DOM nodes with textContent; links are only clickable for http(s), tg:// and t.me.
 */
(function () {
  "use strict";

  const API = "api/";
  const ACTIONS = {
    typing: "typing",
    upload_photo: "sending a photo",
    record_video: "recording a video",
    upload_video: "sending a video",
    record_voice: "recording a voice message",
    upload_voice: "sending a voice message",
    upload_document: "sending a file",
    choose_sticker: "choosing a sticker",
    find_location: "finding a location",
    record_video_note: "recording a video message",
    upload_video_note: "sending a video message",
  };
  const AVATAR_COLORS = ["#e17076", "#faa774", "#a695e7", "#7bc862", "#6ec9cb", "#65aadd", "#ee7aae"];
  const ACTION_SECONDS = 5;

  const S = {
    users: [],
    userId: null,
    bot: { name: "Bot", username: "" },
    commands: [],
    limits: { text: 4096, caption: 1024, photo_bytes: 10485760, file_bytes: 52428800, album: 10 },
    rows: new Map(), // message_id -> element (of the current chat)
    views: new Map(), // message_id -> {message, from_bot, paid}
    keyboard: null,
    keyboardHidden: false,
    blocked: false,
    seq: 0,
    instance: null,
    es: null,
    reconnectTimer: null,
    actionTimer: null,
    toastTimer: null,
    pending: new Map(), // callback query id -> button element
    unread: new Map(),
    loadToken: 0,
    uploadFiles: [],
    checkoutRef: null,
    commandsFetchedAt: 0,
    unseen: 0,
  };

  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  };
  const svg = (path) => {
    const ns = "http://www.w3.org/2000/svg";
    const s = document.createElementNS(ns, "svg");
    s.setAttribute("viewBox", "0 0 24 24");
    s.setAttribute("aria-hidden", "true");
    const p = document.createElementNS(ns, "path");
    p.setAttribute("d", path);
    s.appendChild(p);
    return s;
  };

  // ------------------------------------------------------------------ HTTP

  async function api(path, options) {
    const response = await fetch(API + path, options);
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    if (!response.ok || !body || body.ok === false) {
      const reason = (body && body.error) || "HTTP " + response.status;
      throw new Error(reason);
    }
    return body;
  }
  const post = (path, payload) =>
    api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload) });

  // ------------------------------------------------------------------ links

  /** What a URL does in the sandbox: null when it must stay inert (javascript:, data:, ...). */
  function classifyUrl(raw, autoScheme) {
    if (typeof raw !== "string" || !raw.trim()) return null;
    let text = raw.trim();
    if (autoScheme && !/^[a-z][a-z0-9+.-]*:/i.test(text)) text = "http://" + text;
    let url;
    try {
      url = new URL(text);
    } catch (e) {
      return null;
    }
    const bot = (S.bot.username || "").toLowerCase();
    if (url.protocol === "http:" || url.protocol === "https:") {
      const host = url.hostname.toLowerCase();
      if (host === "t.me" || host === "telegram.me" || host === "www.t.me" || host === "telegram.dog") {
        const path = url.pathname.replace(/^\/+/, "");
        if (path.startsWith("$")) return { kind: "invoice", link: "https://t.me/" + path, href: url.href };
        const name = path.split("/")[0].toLowerCase();
        if (bot && name === bot) return { kind: "deeplink", payload: url.searchParams.get("start"), href: url.href };
      }
      return { kind: "external", href: url.href };
    }
    if (url.protocol === "tg:") {
      const domain = (url.searchParams.get("domain") || "").toLowerCase();
      if (url.hostname === "resolve" && bot && domain === bot) {
        return { kind: "deeplink", payload: url.searchParams.get("start"), href: url.href };
      }
      return { kind: "tg", href: url.href };
    }
    return null;
  }

  function followUrl(target) {
    if (!target) return;
    if (target.kind === "deeplink") {
      const payload = (target.payload || "").trim();
      sendText(payload ? "/start " + payload : "/start");
    } else if (target.kind === "invoice") {
      openCheckout({ invoice_link: target.link });
    } else if (target.kind === "external") {
      window.open(target.href, "_blank", "noopener,noreferrer");
    } else {
      toast("This Telegram link does nothing in the sandbox");
    }
  }

  function linkNode(url, label, autoScheme) {
    const target = classifyUrl(url, autoScheme);
    if (!target) {
      const span = el("span", "inert-link", label);
      span.dataset.testid = "inert-link";
      span.title = "Link not opened in the sandbox";
      return span;
    }
    const a = el("a", "link", label);
    a.href = target.href;
    a.rel = "noopener noreferrer nofollow";
    a.target = "_blank";
    a.title = target.href;
    if (target.kind !== "external") a.dataset.sandbox = target.kind;
    a.addEventListener("click", (event) => {
      event.preventDefault();
      followUrl(target);
    });
    return a;
  }

  // ------------------------------------------------------------------ formatted text

  const AUTO = /(https?:\/\/[^\s<>"']+|(?:www\.|t\.me\/)[^\s<>"']+|(?<![\w/@])\/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?|(?<![\w@])@[A-Za-z][A-Za-z0-9_]{3,31})/g;

  function autoEntities(text, explicit) {
    const found = [];
    for (const m of text.matchAll(AUTO)) {
      let value = m[0];
      const trimmed = value.replace(/[.,;:!?)\]]+$/, "");
      value = trimmed || value;
      const start = m.index;
      const end = start + value.length;
      const clash = explicit.some(
        (e) =>
          (start < e.end && end > e.offset && !(start >= e.offset && end <= e.end)) ||
          (start >= e.offset && end <= e.end && ["code", "pre", "text_link", "url", "bot_command", "mention", "email"].includes(e.type))
      );
      if (clash) continue;
      const type = value[0] === "/" ? "bot_command" : value[0] === "@" ? "mention" : "url";
      found.push({ type, offset: start, length: value.length, end });
    }
    return found;
  }

  function entityNode(e, slice) {
    switch (e.type) {
      case "bold":
        return el("strong");
      case "italic":
        return el("em");
      case "underline":
        return el("u");
      case "strikethrough":
        return el("s");
      case "spoiler": {
        const span = el("span", "spoiler");
        span.title = "Spoiler: click to reveal";
        span.addEventListener("click", () => span.classList.add("revealed"));
        return span;
      }
      case "code":
        return el("code", "inline-code");
      case "pre": {
        const pre = el("pre", "pre");
        if (e.language) pre.appendChild(el("span", "pre-lang", e.language));
        const code = el("code");
        pre.appendChild(code);
        pre._content = code;
        return pre;
      }
      case "text_link":
        return linkNode(e.url, "", false);
      case "url":
        return linkNode(slice, "", true);
      case "bot_command": {
        const span = el("span", "link command");
        span.addEventListener("click", () => sendText(slice.replace(new RegExp("@" + S.bot.username + "$", "i"), "")));
        return span;
      }
      case "blockquote":
        return el("blockquote", "quote");
      case "expandable_blockquote": {
        const q = el("blockquote", "quote expandable collapsed");
        q.title = "Click to expand";
        q.addEventListener("click", () => q.classList.toggle("collapsed"));
        return q;
      }
      case "custom_emoji":
        return el("span", "custom-emoji");
      case "mention":
      case "hashtag":
      case "cashtag":
      case "email":
      case "phone_number":
      case "text_mention":
        return el("span", "link muted-link");
      default:
        return el("span");
    }
  }

  /** A DocumentFragment of text with its entities (offsets are UTF-16 units, like JS strings). */
  function renderText(text, entities) {
    const fragment = document.createDocumentFragment();
    text = typeof text === "string" ? text : "";
    const explicit = (Array.isArray(entities) ? entities : [])
      .filter((e) => e && typeof e.type === "string" && Number.isInteger(e.offset) && Number.isInteger(e.length))
      .filter((e) => e.offset >= 0 && e.length > 0 && e.offset < text.length)
      .map((e) => Object.assign({}, e, { end: Math.min(text.length, e.offset + e.length) }));
    const all = explicit.concat(autoEntities(text, explicit));
    all.sort((a, b) => a.offset - b.offset || b.end - a.end);
    build(fragment, text, 0, text.length, all);
    return fragment;
  }

  function build(parent, text, start, end, ents) {
    let pos = start;
    let i = 0;
    while (i < ents.length) {
      const e = ents[i];
      if (e.offset < pos) {
        i++;
        continue;
      }
      if (e.offset > pos) parent.appendChild(document.createTextNode(text.slice(pos, e.offset)));
      const eEnd = Math.min(e.end, end);
      const inner = [];
      let j = i + 1;
      while (j < ents.length && ents[j].offset < eEnd) {
        inner.push(Object.assign({}, ents[j], { end: Math.min(ents[j].end, eEnd) }));
        j++;
      }
      const node = entityNode(e, text.slice(e.offset, eEnd));
      build(node._content || node, text, e.offset, eEnd, inner);
      parent.appendChild(node);
      pos = eEnd;
      i = j;
    }
    if (pos < end) parent.appendChild(document.createTextNode(text.slice(pos, end)));
  }

  // ------------------------------------------------------------------ messages

  function fileUrl(fileId, download) {
    return API + "files/" + encodeURIComponent(fileId) + (download ? "?download=1" : "");
  }

  function clock(unix) {
    const d = new Date((unix || 0) * 1000);
    return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
  }

  function dayLabel(unix) {
    const d = new Date((unix || 0) * 1000);
    const today = new Date();
    const yesterday = new Date(Date.now() - 86400000);
    if (d.toDateString() === today.toDateString()) return "Today";
    if (d.toDateString() === yesterday.toDateString()) return "Yesterday";
    return d.toLocaleDateString(undefined, { day: "numeric", month: "long", year: "numeric" });
  }

  function humanSize(bytes) {
    if (!Number.isFinite(bytes)) return "";
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1048576) return (bytes / 1024).toFixed(1) + " KB";
    return (bytes / 1048576).toFixed(1) + " MB";
  }

  function starsLabel(currency, amount) {
    if (currency === "XTR") return "⭐ " + amount;
    return (amount / 100).toFixed(2) + " " + currency;
  }

  function pickPhoto(sizes) {
    const list = (Array.isArray(sizes) ? sizes : []).slice();
    if (!list.length) return null;
    let best = list[list.length - 1];
    for (const size of list) if (Math.max(size.width || 0, size.height || 0) <= 1280) best = size;
    return { shown: best, full: list[list.length - 1] };
  }

  function mediaBox(width, height, maxWidth) {
    const w = Math.max(1, width || 320);
    const h = Math.max(1, height || 240);
    const scale = Math.min(1, maxWidth / w, 360 / h);
    return [Math.max(80, Math.round(w * scale)), Math.max(60, Math.round(h * scale))];
  }

  function mediaNode(m, inAlbum) {
    const max = inAlbum ? 200 : 340;
    if (Array.isArray(m.photo) && m.photo.length) {
      const picked = pickPhoto(m.photo);
      const img = el("img", "photo");
      img.dataset.testid = "message-photo";
      img.alt = "Photo";
      img.loading = "lazy";
      img.src = fileUrl(picked.shown.file_id);
      const [w, h] = mediaBox(picked.shown.width, picked.shown.height, max);
      img.width = w;
      img.height = h;
      img.addEventListener("click", () => openViewer(fileUrl(picked.full.file_id)));
      return spoilered(img, m.has_media_spoiler);
    }
    const video = m.video || m.animation || m.video_note;
    if (video && video.file_id) {
      const v = el("video", m.video_note ? "video round" : "video");
      v.dataset.testid = "message-video";
      v.src = fileUrl(video.file_id);
      v.preload = "metadata";
      v.playsInline = true;
      if (m.animation) {
        v.autoplay = true;
        v.loop = true;
        v.muted = true;
      } else {
        v.controls = true;
      }
      const [w, h] = mediaBox(video.width || video.length, video.height || video.length, max);
      v.width = w;
      v.height = h;
      return spoilered(v, m.has_media_spoiler);
    }
    if (m.sticker && m.sticker.file_id) {
      const img = el("img", "sticker");
      img.alt = m.sticker.emoji || "Sticker";
      img.src = fileUrl(m.sticker.file_id);
      return img;
    }
    const audio = m.voice || m.audio;
    if (audio && audio.file_id) {
      const a = el("audio", "audio");
      a.controls = true;
      a.preload = "none";
      a.src = fileUrl(audio.file_id);
      return a;
    }
    if (m.document && m.document.file_id) {
      const doc = el("a", "document");
      doc.dataset.testid = "message-document";
      doc.href = fileUrl(m.document.file_id, true);
      doc.rel = "noopener";
      doc.setAttribute("download", m.document.file_name || "file");
      const icon = el("span", "doc-icon");
      icon.appendChild(svg("M7 3h7l5 5v13H7zM14 3v5h5"));
      const info = el("span", "doc-info");
      info.appendChild(el("span", "doc-name", m.document.file_name || "File"));
      info.appendChild(el("span", "doc-size", humanSize(m.document.file_size)));
      doc.append(icon, info);
      return doc;
    }
    if (m.contact) {
      const card = el("div", "contact");
      card.appendChild(el("div", "avatar small", (m.contact.first_name || "?").slice(0, 1)));
      const info = el("div");
      info.appendChild(el("div", "contact-name", [m.contact.first_name, m.contact.last_name].filter(Boolean).join(" ")));
      info.appendChild(el("div", "contact-phone", m.contact.phone_number));
      card.appendChild(info);
      return card;
    }
    if (m.location) return el("div", "service-inline", "📍 Location " + m.location.latitude + ", " + m.location.longitude);
    return null;
  }

  function spoilered(node, on) {
    if (!on) return node;
    const wrap = el("div", "media-spoiler");
    wrap.appendChild(node);
    wrap.addEventListener("click", (ev) => {
      if (!wrap.classList.contains("revealed")) {
        ev.stopPropagation();
        ev.preventDefault();
        wrap.classList.add("revealed");
      }
    }, true);
    return wrap;
  }

  function invoiceNode(view) {
    const m = view.message;
    const inv = m.invoice || {};
    const card = el("div", "invoice");
    card.appendChild(el("div", "invoice-title", inv.title));
    card.appendChild(el("div", "invoice-description", inv.description));
    card.appendChild(el("div", "invoice-amount", starsLabel(inv.currency, inv.total_amount)));
    const markup = m.reply_markup && m.reply_markup.inline_keyboard;
    const hasPayButton = markup && markup[0] && markup[0][0] && markup[0][0].pay;
    if (!hasPayButton) {
      const pay = el("button", "pay-button");
      pay.type = "button";
      pay.dataset.testid = "pay-button";
      setPayButton(pay, view, "Pay " + starsLabel(inv.currency, inv.total_amount));
      card.appendChild(pay);
    }
    return card;
  }

  function setPayButton(button, view, label) {
    if (view.paid) {
      button.textContent = "✓ Paid";
      button.disabled = true;
      button.classList.add("paid");
      return;
    }
    button.textContent = label;
    button.addEventListener("click", () => openCheckout({ message_id: view.message.message_id }));
  }

  function replyQuote(reply) {
    const box = el("div", "reply-quote");
    const who = reply.from && reply.from.is_bot ? S.bot.name : (reply.from && reply.from.first_name) || "";
    box.appendChild(el("div", "reply-author", who));
    let preview = reply.text || reply.caption || "";
    if (!preview) preview = reply.photo ? "Photo" : reply.video ? "Video" : reply.document ? "File" : "Message";
    box.appendChild(el("div", "reply-text", preview.slice(0, 120)));
    return box;
  }

  function inlineKeyboard(view) {
    const rows = view.message.reply_markup && view.message.reply_markup.inline_keyboard;
    if (!Array.isArray(rows) || !rows.length) return null;
    const kb = el("div", "inline-kb");
    rows.forEach((row, r) => {
      if (!Array.isArray(row)) return;
      const line = el("div", "inline-row");
      row.forEach((button, c) => {
        if (!button || typeof button !== "object") return;
        const b = el("button", "inline-button", button.text);
        b.type = "button";
        b.dataset.testid = button.pay ? "pay-button" : "inline-button";
        b.dataset.row = String(r);
        b.dataset.column = String(c);
        if (button.pay) {
          setPayButton(b, view, button.text);
        } else if (typeof button.callback_data === "string") {
          b.dataset.callbackData = button.callback_data;
          b.addEventListener("click", () => press(view.message.message_id, r, c, b));
        } else if (button.url) {
          const target = classifyUrl(button.url, false);
          b.classList.add("url");
          b.appendChild(svg("M14 4h6v6M20 4l-9 9M18 14v6H4V6h6"));
          if (!target) b.classList.add("inert");
          b.addEventListener("click", () => (target ? followUrl(target) : toast("This link is not opened in the sandbox")));
        } else if (button.copy_text && typeof button.copy_text.text === "string") {
          b.addEventListener("click", () => copyText(button.copy_text.text));
        } else {
          b.classList.add("inert");
          b.addEventListener("click", () => toast("This kind of button is not supported in the sandbox"));
        }
        line.appendChild(b);
      });
      kb.appendChild(line);
    });
    return kb;
  }

  function copyText(text) {
    if (navigator.clipboard) navigator.clipboard.writeText(text).catch(() => {});
    toast("Copied to clipboard");
  }

  function serviceText(m, fromBot) {
    if (m.successful_payment) {
      const p = m.successful_payment;
      const paid = "You successfully transferred " + starsLabel(p.currency, p.total_amount) + " to " + S.bot.name;
      if (!p.is_recurring) return paid;
      const until = p.subscription_expiration_date
        ? " until " + new Date(p.subscription_expiration_date * 1000).toLocaleDateString()
        : "";
      return paid + (p.is_first_recurring ? " for a subscription" : " (subscription renewed)") + until;
    }
    if (m.refunded_payment) {
      const r = m.refunded_payment;
      return "Payment of " + starsLabel(r.currency, r.total_amount) + " refunded";
    }
    return null;
  }

  function messageElement(view, inAlbum) {
    const m = view.message;
    const service = serviceText(m, view.from_bot);
    if (service) {
      const row = el("div", "service");
      row.dataset.testid = "message";
      row.dataset.messageId = String(m.message_id);
      row.dataset.from = view.from_bot ? "bot" : "user";
      row.appendChild(el("span", "service-text", service));
      return row;
    }
    const row = el("div", "msg " + (view.from_bot ? "in" : "out") + (inAlbum ? " album-item" : ""));
    row.dataset.testid = "message";
    row.dataset.messageId = String(m.message_id);
    row.dataset.from = view.from_bot ? "bot" : "user";
    const bubble = el("div", "bubble");
    if (m.sticker) bubble.classList.add("bare");
    if (m.reply_to_message) bubble.appendChild(replyQuote(m.reply_to_message));
    if (m.forward_origin) {
      const who = (m.forward_origin.sender_user && m.forward_origin.sender_user.first_name) || "someone";
      bubble.appendChild(el("div", "forwarded", "Forwarded from " + who));
    }
    const media = mediaNode(m, inAlbum);
    const hasText = typeof m.text === "string" || typeof m.caption === "string";
    if (media) {
      bubble.classList.add("has-media");
      if (!hasText) bubble.classList.add("media-only");
      const holder = el("div", "media");
      holder.appendChild(media);
      bubble.appendChild(holder);
    }
    if (m.invoice) bubble.appendChild(invoiceNode(view));
    if (hasText) {
      const text = el("div", "text");
      text.dataset.testid = "message-text";
      const value = typeof m.text === "string" ? m.text : m.caption;
      const entities = typeof m.text === "string" ? m.entities : m.caption_entities;
      text.appendChild(renderText(value, entities));
      bubble.appendChild(text);
    }
    if (!media && !hasText && !m.invoice) bubble.appendChild(el("div", "text unsupported", "Unsupported message"));
    const meta = el("span", "meta");
    if (m.edit_date) meta.appendChild(el("span", "edited", "edited"));
    meta.appendChild(el("span", "time", clock(m.date)));
    if (!view.from_bot) {
      const ticks = el("span", "ticks" + (view.seen ? " seen" : ""));
      ticks.appendChild(svg(view.seen ? "M2 12l5 5L17 7M9 15l2 2L21 7" : "M5 12l5 5L20 7"));
      meta.appendChild(ticks);
    }
    bubble.appendChild(meta);
    row.appendChild(bubble);
    const kb = inlineKeyboard(view);
    if (kb) row.appendChild(kb);
    return row;
  }

  function nearBottom() {
    const box = $("messages");
    return box.scrollHeight - box.scrollTop - box.clientHeight < 160;
  }

  function scrollToBottom() {
    const box = $("messages");
    box.scrollTop = box.scrollHeight;
    S.unseen = 0;
    $("jump").hidden = true;
  }

  function lastRow() {
    const box = $("messages");
    for (let node = box.lastElementChild; node; node = node.previousElementSibling) {
      if (node.classList.contains("msg") || node.classList.contains("service") || node.classList.contains("album")) return node;
    }
    return null;
  }

  function addMessage(view, opts) {
    const m = view.message;
    if (!m || S.rows.has(m.message_id)) return;
    const box = $("messages");
    const stick = (opts && opts.history) || nearBottom() || !view.from_bot;
    $("empty-card") && $("empty-card").remove();
    const previous = lastRow();
    const prevDate = previous ? Number(previous.dataset.date || 0) : 0;
    if (!previous || dayLabel(prevDate) !== dayLabel(m.date)) box.appendChild(el("div", "date-sep", dayLabel(m.date)));
    S.views.set(m.message_id, view);
    let node;
    if (m.media_group_id) {
      const side = view.from_bot ? "in" : "out";
      let album = previous && previous.classList.contains("album") && previous.dataset.group === m.media_group_id ? previous : null;
      if (!album) {
        album = el("div", "album " + side);
        album.dataset.group = m.media_group_id;
        box.appendChild(album);
      }
      node = messageElement(view, true);
      album.appendChild(node);
      album.dataset.date = String(m.date || 0);
    } else {
      node = messageElement(view, false);
      node.dataset.date = String(m.date || 0);
      box.appendChild(node);
    }
    S.rows.set(m.message_id, node);
    if (view.from_bot) markSeen();
    if (stick) scrollToBottom();
    else {
      S.unseen += 1;
      $("jump-count").textContent = String(S.unseen);
      $("jump").hidden = false;
    }
  }

  function markSeen() {
    for (const [id, view] of S.views) {
      if (!view.from_bot && !view.seen) {
        view.seen = true;
        replaceRow(id);
      }
    }
  }

  function replaceRow(id) {
    const old = S.rows.get(id);
    const view = S.views.get(id);
    if (!old || !view) return;
    const inAlbum = old.classList.contains("album-item");
    const node = messageElement(view, inAlbum);
    node.dataset.date = old.dataset.date || "";
    old.replaceWith(node);
    S.rows.set(id, node);
  }

  function updateMessage(data, fromBot, paid) {
    const view = S.views.get(data.message_id);
    if (!view) return;
    view.message = data;
    if (paid) view.paid = true;
    replaceRow(data.message_id);
  }

  function removeMessage(id) {
    const node = S.rows.get(id);
    if (!node) return;
    const parent = node.parentElement;
    node.remove();
    if (parent && parent.classList.contains("album") && !parent.children.length) parent.remove();
    S.rows.delete(id);
    S.views.delete(id);
  }

  // ------------------------------------------------------------------ header, typing, toasts, alerts

  function avatarColor(id) {
    return AVATAR_COLORS[Math.abs(Number(id) || 0) % AVATAR_COLORS.length];
  }

  function renderHeader() {
    const name = S.bot.name || "Bot";
    $("bot-name").textContent = name;
    $("bot-avatar").textContent = name.trim().slice(0, 1).toUpperCase() || "B";
    document.title = name + " · Sandbox chat";
    const me = S.users.find((u) => u.id === S.userId);
    const chip = $("me");
    chip.textContent = "";
    if (me) {
      const dot = el("span", "avatar tiny", me.first_name.slice(0, 1).toUpperCase());
      dot.style.background = avatarColor(me.id);
      chip.append(dot, el("span", "", me.first_name + (me.language_code ? " · " + me.language_code : "")));
    }
  }

  function showAction(action) {
    const typing = $("typing");
    typing.textContent = "";
    typing.appendChild(el("span", "dots"));
    typing.appendChild(document.createTextNode((ACTIONS[action] || "busy") + "…"));
    typing.dataset.action = action;
    typing.hidden = false;
    $("status-text").hidden = true;
    clearTimeout(S.actionTimer);
    S.actionTimer = setTimeout(hideAction, ACTION_SECONDS * 1000);
  }

  function hideAction() {
    clearTimeout(S.actionTimer);
    $("typing").hidden = true;
    $("typing").dataset.action = "";
    $("status-text").hidden = false;
  }

  function toast(text) {
    const box = $("toast");
    box.textContent = text;
    box.hidden = false;
    box.classList.remove("fade");
    clearTimeout(S.toastTimer);
    S.toastTimer = setTimeout(() => {
      box.classList.add("fade");
      S.toastTimer = setTimeout(() => (box.hidden = true), 300);
    }, Math.min(6000, 2200 + text.length * 25));
  }

  function showAlert(text) {
    $("alert-title").textContent = S.bot.name;
    $("alert-text").textContent = text;
    $("alert").hidden = false;
    $("alert-ok").focus();
  }

  // ------------------------------------------------------------------ reply keyboard and commands

  function applyKeyboard(markup) {
    if (!markup) return;
    if (markup.keyboard) {
      S.keyboard = markup;
      S.keyboardHidden = false;
    } else if (markup.remove_keyboard) {
      S.keyboard = null;
    }
    $("input").placeholder = (markup.keyboard || markup.force_reply) && markup.input_field_placeholder ? markup.input_field_placeholder : "Message";
    renderKeyboard();
  }

  function renderKeyboard() {
    const box = $("reply-keyboard");
    box.textContent = "";
    const markup = S.keyboard;
    $("kb-toggle").hidden = !markup;
    if (!markup || S.keyboardHidden) {
      box.hidden = true;
      return;
    }
    (markup.keyboard || []).forEach((row) => {
      if (!Array.isArray(row)) return;
      const line = el("div", "kb-row");
      row.forEach((button) => {
        const spec = typeof button === "string" ? { text: button } : button || {};
        const b = el("button", "kb-button", spec.text);
        b.type = "button";
        b.dataset.testid = "reply-button";
        b.addEventListener("click", () => pressReply(spec));
        line.appendChild(b);
      });
      box.appendChild(line);
    });
    box.classList.toggle("compact", !!markup.resize_keyboard);
    box.hidden = false;
  }

  function pressReply(spec) {
    if (S.keyboard && S.keyboard.one_time_keyboard) {
      S.keyboardHidden = true;
      renderKeyboard();
    }
    if (spec.request_contact) {
      post("send", { user_id: S.userId, contact: true }).then(onSent, (e) => toast(e.message));
    } else if (spec.request_location || spec.request_poll || spec.request_users || spec.request_chat || spec.web_app) {
      toast("This button is not supported in the sandbox");
    } else {
      sendText(spec.text);
    }
  }

  function renderCommands(filter) {
    const box = $("commands");
    box.textContent = "";
    const wanted = (filter || "").toLowerCase();
    const list = S.commands.filter((c) => !wanted || ("/" + c.command).startsWith(wanted));
    for (const c of list) {
      const item = el("button", "command-item");
      item.type = "button";
      item.dataset.testid = "command-item";
      item.dataset.command = c.command;
      item.setAttribute("role", "option");
      item.appendChild(el("span", "command-name", "/" + c.command));
      item.appendChild(el("span", "command-description", c.description));
      item.addEventListener("click", () => {
        hideCommands();
        $("input").value = "";
        sendText("/" + c.command);
      });
      box.appendChild(item);
    }
    box.hidden = !list.length;
  }

  function hideCommands() {
    $("commands").hidden = true;
  }

  async function refreshCommands(force) {
    if (!S.userId || (!force && Date.now() - S.commandsFetchedAt < 3000)) return;
    S.commandsFetchedAt = Date.now();
    const userId = S.userId;
    try {
      const body = await api("commands?user_id=" + encodeURIComponent(userId));
      if (userId !== S.userId) return;
      S.commands = body.commands || [];
      S.bot = Object.assign(S.bot, body.bot || {});
      $("menu-button").hidden = !S.commands.length;
      renderHeader();
    } catch (e) {
      /* the next event retries */
    }
  }

  // ------------------------------------------------------------------ actions

  function onSent(body) {
    if (body && body.message) addMessage({ message: body.message, from_bot: false });
  }

  async function sendText(text) {
    if (!S.userId || typeof text !== "string" || !text.trim()) return;
    try {
      onSent(await post("send", { user_id: S.userId, text }));
    } catch (e) {
      toast(e.message);
    }
  }

  async function press(messageId, row, column, button) {
    button.classList.add("loading");
    try {
      const body = await post("press", { user_id: S.userId, message_id: messageId, row, column });
      S.pending.set(body.callback_query_id, button);
      setTimeout(() => {
        if (S.pending.get(body.callback_query_id) === button) {
          S.pending.delete(body.callback_query_id);
          button.classList.remove("loading");
        }
      }, 15000);
    } catch (e) {
      button.classList.remove("loading");
      toast(e.message);
    }
  }

  function submitInput() {
    const input = $("input");
    const text = input.value;
    if (!text.trim()) return;
    if (text.length > S.limits.text) {
      toast("The message is too long (" + text.length + " / " + S.limits.text + ")");
      return;
    }
    input.value = "";
    autosize();
    hideCommands();
    sendText(text);
  }

  function autosize() {
    const input = $("input");
    input.style.height = "auto";
    input.style.height = Math.min(160, input.scrollHeight) + "px";
  }

  // ------------------------------------------------------------------ uploads

  function openUpload(files) {
    const list = Array.from(files || []).filter((f) => f && f.size >= 0);
    if (!list.length) return;
    const error = $("upload-error");
    error.hidden = true;
    S.uploadFiles = list.slice(0, S.limits.album);
    const previews = $("upload-previews");
    previews.textContent = "";
    for (const file of S.uploadFiles) {
      const cell = el("div", "upload-cell");
      if (file.type.startsWith("image/")) {
        const img = el("img");
        img.alt = file.name;
        img.src = URL.createObjectURL(file);
        img.addEventListener("load", () => URL.revokeObjectURL(img.src));
        cell.appendChild(img);
      } else {
        cell.appendChild(el("div", "upload-file", file.name));
      }
      previews.appendChild(cell);
    }
    previews.classList.toggle("single", S.uploadFiles.length === 1);
    const photos = S.uploadFiles.every((f) => f.type.startsWith("image/"));
    const n = S.uploadFiles.length;
    $("upload-title").textContent = "Send " + (n === 1 ? "1 " : n + " ") + (photos ? (n === 1 ? "photo" : "photos") : n === 1 ? "file" : "files");
    if (list.length > S.limits.album) showUploadError("Only the first " + S.limits.album + " files are sent");
    $("upload-caption").value = $("input").value.trim();
    $("upload").hidden = false;
    $("upload-caption").focus();
  }

  function showUploadError(text) {
    $("upload-error").textContent = text;
    $("upload-error").hidden = false;
  }

  async function sendUpload() {
    const files = S.uploadFiles;
    if (!files.length) return;
    for (const f of files) {
      if (f.size > S.limits.file_bytes) return showUploadError(f.name + " is larger than " + humanSize(S.limits.file_bytes));
    }
    const form = new FormData();
    form.append("user_id", String(S.userId));
    form.append("caption", $("upload-caption").value);
    for (const f of files) form.append("file", f, f.name);
    const button = $("upload-send");
    button.disabled = true;
    try {
      const body = await api("upload", { method: "POST", body: form });
      if ($("upload-caption").value.trim() === $("input").value.trim()) $("input").value = "";
      closeUpload();
      for (const message of body.messages || []) addMessage({ message, from_bot: false });
    } catch (e) {
      showUploadError(e.message);
    } finally {
      button.disabled = false;
    }
  }

  function closeUpload() {
    $("upload").hidden = true;
    S.uploadFiles = [];
    $("file-input").value = "";
  }

  // ------------------------------------------------------------------ payments

  async function openCheckout(ref) {
    const query = ref.invoice_link ? "link=" + encodeURIComponent(ref.invoice_link) : "message_id=" + ref.message_id;
    let invoice;
    try {
      invoice = (await api("invoice?user_id=" + S.userId + "&" + query)).invoice;
    } catch (e) {
      return toast(e.message);
    }
    S.checkoutRef = ref;
    $("checkout-title").textContent = invoice.title;
    $("checkout-description").textContent = invoice.description;
    const prices = $("checkout-prices");
    prices.textContent = "";
    for (const p of invoice.prices || []) {
      const line = el("div", "price-line");
      line.append(el("span", "", p.label), el("span", "", starsLabel(invoice.currency, p.amount)));
      prices.appendChild(line);
    }
    const total = el("div", "price-line total");
    total.append(el("span", "", "Total"), el("span", "", starsLabel(invoice.currency, invoice.total_amount)));
    prices.appendChild(total);
    $("checkout-error").hidden = true;
    const confirm = $("checkout-confirm");
    confirm.disabled = !!invoice.paid;
    confirm.textContent = invoice.paid ? "Already paid" : "Pay " + starsLabel(invoice.currency, invoice.total_amount);
    confirm.dataset.label = confirm.textContent;
    $("checkout").hidden = false;
  }

  async function confirmCheckout() {
    const ref = S.checkoutRef;
    if (!ref) return;
    const confirm = $("checkout-confirm");
    confirm.disabled = true;
    confirm.textContent = "Waiting for the bot…";
    $("checkout-error").hidden = true;
    try {
      const body = await post("pay", Object.assign({ user_id: S.userId }, ref));
      if (body.paid) {
        $("checkout").hidden = true;
        S.checkoutRef = null;
        if (body.message) addMessage({ message: body.message, from_bot: false });
        if (ref.message_id && S.views.has(ref.message_id)) {
          S.views.get(ref.message_id).paid = true;
          replaceRow(ref.message_id);
        }
        toast("Payment successful");
      } else {
        $("checkout-error").textContent = body.error_message || "The bot refused the payment";
        $("checkout-error").hidden = false;
        confirm.textContent = confirm.dataset.label;
        confirm.disabled = false;
      }
    } catch (e) {
      $("checkout-error").textContent = e.message;
      $("checkout-error").hidden = false;
      confirm.textContent = confirm.dataset.label;
      confirm.disabled = false;
    }
  }

  // ------------------------------------------------------------------ users and chats

  function renderUsers() {
    const list = $("users");
    list.textContent = "";
    for (const u of S.users) {
      const li = el("li");
      const b = el("button", "user" + (u.id === S.userId ? " active" : ""));
      b.type = "button";
      b.dataset.testid = "user-option";
      b.dataset.userId = String(u.id);
      const avatar = el("span", "avatar", (u.first_name || "?").slice(0, 1).toUpperCase());
      avatar.style.background = avatarColor(u.id);
      const info = el("span", "user-info");
      info.appendChild(el("span", "user-name", [u.first_name, u.last_name].filter(Boolean).join(" ")));
      info.appendChild(el("span", "user-sub", (u.language_code || "—") + " · id " + u.id));
      b.append(avatar, info);
      const unread = S.unread.get(u.id) || 0;
      if (unread && u.id !== S.userId) b.appendChild(el("span", "badge", unread));
      b.addEventListener("click", () => switchUser(u.id));
      li.appendChild(b);
      list.appendChild(li);
    }
  }

  async function loadUsers() {
    const body = await api("users");
    S.users = body.users || [];
    renderUsers();
  }

  function switchUser(id) {
    closeSidebar();
    if (id === S.userId) return;
    S.userId = id;
    S.unread.delete(id);
    try {
      localStorage.setItem("sandbox-chat-user", String(id));
    } catch (e) {
      /* private mode */
    }
    history.replaceState(null, "", "#user=" + id);
    renderUsers();
    openChat();
  }

  function emptyCard() {
    const card = el("div", "empty-card");
    card.id = "empty-card";
    card.appendChild(el("div", "empty-title", "What can this bot do?"));
    card.appendChild(el("div", "empty-text", S.bot.description || S.bot.short_description || "Say hello: press Start, or type a message below."));
    const start = el("button", "btn primary", "Start");
    start.type = "button";
    start.dataset.testid = "start-button";
    start.addEventListener("click", () => sendText("/start"));
    card.appendChild(start);
    return card;
  }

  async function openChat() {
    const token = ++S.loadToken;
    const userId = S.userId;
    let body;
    try {
      body = await api("history?user_id=" + encodeURIComponent(userId));
    } catch (e) {
      toast(e.message);
      return;
    }
    if (token !== S.loadToken) return;
    S.rows.clear();
    S.views.clear();
    S.pending.clear();
    S.unseen = 0;
    hideAction();
    S.bot = body.bot || S.bot;
    S.commands = body.commands || [];
    S.limits = body.limits || S.limits;
    S.commandsFetchedAt = Date.now();
    if (S.instance === null) S.instance = body.instance;
    const box = $("messages");
    box.textContent = "";
    if (!body.messages.length) box.appendChild(emptyCard());
    let lastBot = 0;
    body.messages.forEach((v, i) => {
      if (v.from_bot) lastBot = i;
    });
    body.messages.forEach((v, i) => {
      if (!v.from_bot && i < lastBot) v.seen = true;
      addMessage(v, { history: true });
    });
    S.keyboard = null;
    S.keyboardHidden = false;
    if (body.reply_keyboard) applyKeyboard(body.reply_keyboard);
    else applyKeyboard({ remove_keyboard: true });
    setBlocked(!!body.blocked);
    $("menu-button").hidden = !S.commands.length;
    renderHeader();
    scrollToBottom();
    if (S.seq === 0 || !S.es) {
      S.seq = body.seq;
      connect();
    }
  }

  function setBlocked(blocked) {
    S.blocked = blocked;
    $("inputbar").hidden = blocked;
    $("restart").hidden = !blocked;
    $("block-toggle").textContent = blocked ? "Restart the bot" : "Stop and block bot";
    if (blocked) $("reply-keyboard").hidden = true;
    else renderKeyboard();
  }

  // ------------------------------------------------------------------ live events

  function connect() {
    clearTimeout(S.reconnectTimer);
    if (S.es) S.es.close();
    const es = new EventSource(API + "events?since=" + S.seq);
    S.es = es;
    es.addEventListener("hello", (event) => {
      $("conn").hidden = true;
      const hello = JSON.parse(event.data);
      if (S.instance !== null && (hello.instance !== S.instance || hello.resync)) {
        // The emulator restarted (its state is in memory): read everything again.
        S.instance = hello.instance;
        S.seq = hello.seq;
        loadUsers().then(() => {
          if (!S.users.some((u) => u.id === S.userId) && S.users.length) S.userId = S.users[0].id;
          renderUsers();
          openChat();
        });
        return;
      }
      S.instance = hello.instance;
    });
    es.onmessage = (event) => {
      let ev;
      try {
        ev = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      S.seq = Math.max(S.seq, ev.seq || 0);
      handleEvent(ev);
    };
    es.onerror = () => {
      $("conn").hidden = false;
      if (es.readyState === EventSource.CLOSED) {
        S.reconnectTimer = setTimeout(connect, 2000);
      }
    };
  }

  function handleEvent(ev) {
    if (ev.chat_id !== S.userId) {
      if (!S.users.some((u) => u.id === ev.chat_id)) loadUsers().catch(() => {});
      if (ev.kind === "bot_message") {
        S.unread.set(ev.chat_id, (S.unread.get(ev.chat_id) || 0) + 1);
        renderUsers();
      }
      return;
    }
    switch (ev.kind) {
      case "bot_message":
        hideAction();
        addMessage({ message: ev.data, from_bot: true, paid: ev.paid });
        if (ev.keyboard) applyKeyboard(ev.keyboard);
        refreshCommands(false);
        break;
      case "user_message":
        addMessage({ message: ev.data, from_bot: false });
        break;
      case "bot_edit":
      case "user_edit":
        updateMessage(ev.data, ev.kind === "bot_edit", ev.paid);
        break;
      case "bot_delete":
        removeMessage(ev.message_id);
        break;
      case "chat_action":
        showAction(ev.data.action);
        break;
      case "callback_answer": {
        const button = S.pending.get(ev.data.callback_query_id);
        if (button) {
          button.classList.remove("loading");
          S.pending.delete(ev.data.callback_query_id);
        }
        if (ev.data.text) {
          if (ev.data.show_alert) showAlert(ev.data.text);
          else toast(ev.data.text);
        }
        if (ev.data.url) followUrl(classifyUrl(ev.data.url, false));
        break;
      }
      case "blocked":
      case "unblocked":
        setBlocked(ev.kind === "blocked");
        break;
      default:
        break;
    }
  }

  // ------------------------------------------------------------------ viewer, sidebar

  function openViewer(src) {
    $("viewer-img").src = src;
    $("viewer").hidden = false;
  }

  function closeSidebar() {
    $("app").classList.remove("sidebar-open");
    $("scrim").hidden = true;
  }

  // ------------------------------------------------------------------ wiring

  function wire() {
    const input = $("input");
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        submitInput();
      } else if (event.key === "Escape") {
        hideCommands();
      }
    });
    input.addEventListener("input", () => {
      autosize();
      const value = input.value;
      if (/^\/\S*$/.test(value)) renderCommands(value);
      else hideCommands();
    });
    input.addEventListener("paste", (event) => {
      const files = Array.from((event.clipboardData && event.clipboardData.files) || []);
      if (files.length) {
        event.preventDefault();
        openUpload(files);
      }
    });
    $("send").addEventListener("click", submitInput);
    $("menu-button").addEventListener("click", async () => {
      if (!$("commands").hidden) return hideCommands();
      await refreshCommands(true);
      renderCommands("");
    });
    $("attach").addEventListener("click", () => $("file-input").click());
    $("file-input").addEventListener("change", (event) => openUpload(event.target.files));
    $("upload-send").addEventListener("click", sendUpload);
    $("upload-cancel").addEventListener("click", closeUpload);
    $("upload-caption").addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        sendUpload();
      }
    });
    $("kb-toggle").addEventListener("click", () => {
      S.keyboardHidden = !S.keyboardHidden;
      renderKeyboard();
    });
    $("alert-ok").addEventListener("click", () => ($("alert").hidden = true));
    $("checkout-confirm").addEventListener("click", confirmCheckout);
    $("checkout-cancel").addEventListener("click", () => {
      $("checkout").hidden = true;
      S.checkoutRef = null;
    });
    $("viewer").addEventListener("click", () => ($("viewer").hidden = true));
    $("jump").addEventListener("click", scrollToBottom);
    $("messages").addEventListener("scroll", () => {
      if (nearBottom()) {
        S.unseen = 0;
        $("jump").hidden = true;
      }
    });
    $("start-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const payload = $("start-payload").value.trim();
      sendText(payload ? "/start " + payload : "/start");
      closeSidebar();
    });
    $("add-user").addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = event.target;
      const error = $("add-user-error");
      error.hidden = true;
      try {
        const body = await post("users", {
          first_name: form.elements.first_name.value,
          language_code: form.elements.language_code.value,
        });
        form.reset();
        $("add-user-box").open = false;
        await loadUsers();
        switchUser(body.user.id);
      } catch (e) {
        error.textContent = e.message;
        error.hidden = false;
      }
    });
    const toggleBlock = async () => {
      try {
        const wasBlocked = S.blocked;
        await post("block", { user_id: S.userId, blocked: !wasBlocked });
        setBlocked(!wasBlocked);
        if (wasBlocked) sendText("/start");
      } catch (e) {
        toast(e.message);
      }
    };
    $("block-toggle").addEventListener("click", toggleBlock);
    $("restart").addEventListener("click", toggleBlock);
    $("sidebar-toggle").addEventListener("click", () => {
      $("app").classList.add("sidebar-open");
      $("scrim").hidden = false;
    });
    $("scrim").addEventListener("click", closeSidebar);
    document.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      for (const id of ["alert", "viewer", "upload", "checkout"]) {
        if (!$(id).hidden) {
          if (id === "upload") closeUpload();
          else $(id).hidden = true;
          return;
        }
      }
    });
    document.addEventListener("click", (event) => {
      if (!$("commands").hidden && !event.target.closest("#commands, #menu-button")) hideCommands();
    });
    // Drag and drop photos onto the chat.
    const chat = $("chat");
    let depth = 0;
    chat.addEventListener("dragenter", (event) => {
      if (!event.dataTransfer || !Array.from(event.dataTransfer.types).includes("Files")) return;
      depth++;
      $("drop-hint").hidden = false;
    });
    chat.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (!depth) $("drop-hint").hidden = true;
    });
    chat.addEventListener("dragover", (event) => event.preventDefault());
    chat.addEventListener("drop", (event) => {
      event.preventDefault();
      depth = 0;
      $("drop-hint").hidden = true;
      if (event.dataTransfer && event.dataTransfer.files.length) openUpload(event.dataTransfer.files);
    });
  }

  async function boot() {
    try {
      await loadUsers();
    } catch (e) {
      $("conn").hidden = false;
      setTimeout(boot, 2000);
      return;
    }
    const fromHash = Number((location.hash.match(/user=(\d+)/) || [])[1]);
    let stored = NaN;
    try {
      stored = Number(localStorage.getItem("sandbox-chat-user"));
    } catch (e) {
      /* private mode */
    }
    const known = (id) => S.users.some((u) => u.id === id);
    S.userId = known(fromHash) ? fromHash : known(stored) ? stored : S.users.length ? S.users[0].id : null;
    renderUsers();
    if (S.userId !== null) await openChat();
  }

  let booted = false;
  const start = () => {
    if (booted) return;
    booted = true;
    wire();
    boot();
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
