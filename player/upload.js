// Uploading a file from the page: POST /v1/assets, then follow the packaging job's
// Server-Sent Events until the asset is ready (or say clearly why it failed).

import { currentKey } from './api.js';

const KEY_STORE = 'sori:api-key'; // the upload key asked for once (the key field's comes first)

function post(file, key, onProgress) {
  // XMLHttpRequest, not fetch: only it reports upload progress.
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append('file', file);
    form.append('title', file.name.replace(/\.[^.]+$/, ''));
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/v1/assets');
    if (key) xhr.setRequestHeader('Authorization', `Bearer ${key}`);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onerror = () => reject(new Error('The upload could not reach the server.'));
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      resolve({ status: xhr.status, body });
    };
    xhr.send(form);
  });
}

function follow(jobId, onProgress) {
  return new Promise((resolve, reject) => {
    const events = new EventSource(`/v1/jobs/${encodeURIComponent(jobId)}/events`);
    const job = (e) => { try { return JSON.parse(e.data); } catch { return {}; } };
    events.addEventListener('progress', (e) => onProgress(job(e).progress || 0));
    events.addEventListener('done', (e) => { events.close(); resolve(job(e)); });
    events.addEventListener('failed', (e) => {
      events.close();
      reject(new Error(job(e).error || 'Packaging failed.'));
    });
    events.onerror = () => {
      if (events.readyState === EventSource.CLOSED) reject(new Error('Lost the job\'s progress stream.'));
    };
  });
}

/** Wire the upload button: `onDone(assetId)` runs when the new asset is ready. */
export function setupUpload({ button, input, status, onDone }) {
  const show = (text, kind = '') => {
    status.textContent = text;
    status.dataset.kind = kind;
    status.hidden = !text;
  };
  button.addEventListener('click', () => input.click());
  input.addEventListener('change', async () => {
    const file = input.files?.[0];
    input.value = '';
    if (!file) return;
    button.disabled = true;
    try {
      let key = currentKey() || localStorage.getItem(KEY_STORE) || '';
      let res = await post(file, key, (f) => show(`Uploading ${file.name}… ${Math.round(f * 100)}%`));
      if (res.status === 401) {
        key = window.prompt('This server needs an API key to upload:') || '';
        if (!key) throw new Error('Upload cancelled: no API key.');
        localStorage.setItem(KEY_STORE, key);
        res = await post(file, key, (f) => show(`Uploading ${file.name}… ${Math.round(f * 100)}%`));
      }
      if (res.status !== 202) {
        if (res.status === 401) localStorage.removeItem(KEY_STORE);
        throw new Error(res.body?.error || `The server answered ${res.status}.`);
      }
      show(`Packaging ${file.name}…`);
      await follow(res.body.job.id, (f) => show(`Packaging ${file.name}… ${Math.round(f * 100)}%`));
      show(`${file.name} is ready.`, 'ok');
      await onDone(res.body.asset.id);
    } catch (err) {
      show(err.message, 'error');
    } finally {
      button.disabled = false;
    }
  });
}
