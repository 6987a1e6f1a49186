// Attachments on screen: a message's files (images as thumbnails that open full size in an overlay,
// other files as chips that download), the files of the reply being written with their upload
// progress, and the lifetime of the blob: URLs they are shown through.
//
// The hub serves attachments only with a bearer token in the `Authorization` header, so nothing
// here is loaded by URL: each image is fetched (uploads.js `fetchBlob`) and shown through a blob:
// URL (the page's policy allows `img-src blob:` for this), which is revoked as soon as its element
// leaves the page. Names are the hub's sanitised ones, shown as typed text (`dir="auto"`, `<bdi>`).

import { bdi, errorText, fileSize, t, typed } from './i18n.js';
import { fetchBlob, MAX_BYTES, MAX_FILES } from './uploads.js';

/** A downloaded file's blob: URL lives this long after the click (the browser reads it first). */
const DOWNLOAD_URL_MS = 60_000;

/** `<img>` on screen -> its blob: URL. */
const shown = new Map();
let tokenOf = () => '';
let viewer = null;

/**
 * Wires the module: `token()` gives the agent's current token, `dialog` is the overlay for full-size
 * images (with an `<img>` inside), `roots` are the elements whose images are watched: an image
 * taken out of them gives its blob: URL back.
 */
export function setupAttachments({ token, dialog, roots }) {
  tokenOf = token;
  viewer = dialog;
  // A click anywhere closes the overlay; Escape closes a modal dialog by itself.
  dialog.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => {
    const img = dialog.querySelector('img');
    forget(img);
    img.alt = '';
  });
  const observer = new MutationObserver(sweep);
  for (const root of roots) observer.observe(root, { childList: true, subtree: true });
}

/** Revokes the URLs of images no longer on the page. */
export function sweep() {
  for (const img of [...shown.keys()]) {
    if (!img.isConnected) forget(img);
  }
}

function forget(img) {
  const url = shown.get(img);
  if (!url) return;
  // An image still loading from a URL that goes would fail loudly: it lets go of the URL first.
  if (img.getAttribute('src') === url) img.removeAttribute('src');
  URL.revokeObjectURL(url);
  shown.delete(img);
}

/** Fetches `path` into `img` through a blob: URL; false when it could not be loaded. */
async function showBlob(img, path) {
  try {
    const blob = await fetchBlob(path, tokenOf());
    // Taken off the page (another ticket opened) or the overlay closed while it was fetched.
    const dialog = img.closest('dialog');
    if (!img.isConnected || (dialog && !dialog.open)) return false;
    forget(img);
    const url = URL.createObjectURL(blob);
    shown.set(img, url);
    img.src = url;
    return true;
  } catch {
    return false;
  }
}

/** A message's attachments: `[{id, kind, media_type, size, name, width?, height?, url, thumbnail?}]`. */
export function attachmentList(attachments) {
  const list = document.createElement('ul');
  list.className = 'attachments';
  for (const a of attachments) {
    const li = document.createElement('li');
    li.append(a.kind === 'image' ? thumbnail(a) : chip(a));
    list.append(li);
  }
  return list;
}

/** A button for one attachment of a message. */
function attachmentButton(className, a, label, onClick) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = className;
  button.dataset.attachment = a.id;
  button.setAttribute('aria-label', label);
  button.addEventListener('click', () => onClick(button));
  return button;
}

/** A file's sanitised name, in its own direction. */
function fileName(name) {
  const e = bdi(name, 'name');
  e.dir = 'auto';
  return e;
}

function sizeText(bytes) {
  const e = document.createElement('span');
  e.className = 'size';
  e.textContent = fileSize(bytes);
  return e;
}

function thumbnail(a) {
  const button = attachmentButton('thumb', a, t('attach.open_image', { name: typed(a.name) }), () => openImage(a));
  button.title = a.name;
  const img = document.createElement('img');
  img.alt = a.name;
  // Room kept from the start, so that the conversation does not jump when the image arrives.
  if (a.width > 0 && a.height > 0) {
    const scale = Math.min(1, 200 / a.width, 160 / a.height);
    img.width = Math.max(1, Math.round(a.width * scale));
    img.height = Math.max(1, Math.round(a.height * scale));
  }
  button.append(img);
  showBlob(img, a.thumbnail || a.url).then((ok) => {
    if (!ok) {
      button.classList.add('broken');
      button.title = t('attach.failed_load');
    }
  });
  return button;
}

function chip(a) {
  const label = t('attach.download', { name: typed(a.name), size: fileSize(a.size) });
  const button = attachmentButton('file-chip', a, label, (b) => download(a, b));
  const icon = document.createElement('span');
  icon.className = 'file-icon';
  icon.setAttribute('aria-hidden', 'true');
  icon.textContent = '↓';
  button.append(icon, fileName(a.name), sizeText(a.size));
  return button;
}

/** The full-size image in the overlay. */
async function openImage(a) {
  const img = viewer.querySelector('img');
  img.alt = a.name;
  viewer.showModal();
  if (!(await showBlob(img, a.url)) && viewer.open) {
    viewer.close();
    alertFailed();
  }
}

/** Saves a file under its name: fetched with the token, handed to the browser as a download. */
async function download(a, button) {
  button.disabled = true;
  try {
    const blob = await fetchBlob(a.url, tokenOf());
    const url = URL.createObjectURL(blob);
    const link = document.createElement('a');
    link.href = url;
    link.download = a.name;
    link.hidden = true;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), DOWNLOAD_URL_MS);
  } catch {
    alertFailed();
  } finally {
    button.disabled = false;
  }
}

function alertFailed() {
  const error = document.getElementById('ticket-error');
  if (error) error.textContent = t('attach.failed_load');
}

/** The files of a message still being sent: names and sizes only. */
export function pendingList(attachments) {
  const list = document.createElement('ul');
  list.className = 'attachments pending';
  for (const a of attachments) {
    const li = document.createElement('li');
    li.className = 'file-chip';
    li.append(fileName(a.name), sizeText(a.size));
    list.append(li);
  }
  return list;
}

/** Why a file of the reply was refused, by the hub's code or a limit checked here. */
export function uploadErrorText(code) {
  if (code === 'too_large') return t('attach.error.too_large', { max: fileSize(MAX_BYTES) });
  if (code === 'too_many') return t('attach.error.too_many', { n: MAX_FILES });
  const key = `attach.error.${code}`;
  const text = t(key);
  return text === key ? errorText(code) : text;
}

/**
 * Brings the reply's list of files in line with `draft` (uploads.js `Draft`): one item per file,
 * kept across renders (so that focus stays), with its name, size, progress and a remove button.
 */
export function renderDraft(draft, list, onRemove) {
  list.hidden = draft.items.length === 0;
  const old = new Map([...list.children].map((li) => [Number(li.dataset.key), li]));
  const items = draft.items.map((item) => {
    const li = old.get(item.key) || draftItem(item, onRemove);
    li.dataset.state = item.state;
    const progress = li.querySelector('progress');
    progress.max = Math.max(1, item.size);
    progress.value = item.state === 'stored' ? progress.max : item.sent;
    progress.hidden = item.state === 'failed';
    const status = li.querySelector('.status');
    const text =
      item.state === 'failed'
        ? uploadErrorText(item.error)
        : item.state === 'stored'
          ? t('attach.stored')
          : item.state === 'waiting'
            ? t('attach.waiting')
            : t('attach.uploading', { percent: Math.floor((100 * item.sent) / Math.max(1, item.size)) });
    if (status.textContent !== text) status.textContent = text;
    status.setAttribute('role', item.state === 'failed' ? 'alert' : 'status');
    const size = fileSize(item.size);
    if (li.querySelector('.size').textContent !== size) li.querySelector('.size').textContent = size;
    const remove = li.querySelector('button');
    remove.setAttribute('aria-label', t('attach.remove', { name: typed(item.name) }));
    remove.title = remove.getAttribute('aria-label');
    return li;
  });
  for (const [key, li] of old) if (!draft.find(key)) li.remove();
  items.forEach((li, i) => {
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
  });
}

function draftItem(item, onRemove) {
  const li = document.createElement('li');
  li.className = 'draft-file';
  li.dataset.key = String(item.key);
  const progress = document.createElement('progress');
  const status = document.createElement('span');
  status.className = 'status';
  const remove = document.createElement('button');
  remove.type = 'button';
  remove.className = 'icon remove';
  remove.textContent = '×';
  remove.addEventListener('click', () => onRemove(item.key));
  li.append(fileName(item.name), sizeText(item.size), progress, status, remove);
  return li;
}
