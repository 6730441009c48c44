// The library: one card per asset, with a friendly empty state.

import { el, icon, formatTime, formatDate } from './util.js';

function artwork(asset) {
  // A private asset's poster answers only to a signed URL: its card shows the cover.
  if (asset.poster && asset.access !== 'private') {
    return el('img', {
      class: 'card-poster', src: asset.poster, alt: '', loading: 'lazy', decoding: 'async',
      width: 320, height: 180,
    });
  }
  // Audio (or a video without a poster): a calm generated cover from the id.
  let hash = 0;
  for (const ch of asset.id) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return el('div', { class: 'card-cover', style: `--hue:${hash % 360}` },
    icon(asset.kind === 'video' ? 'film' : 'wave'));
}

function badge(asset) {
  if (asset.state === 'live') return el('span', { class: 'badge badge-live' }, el('i', { class: 'live-dot' }), 'Live');
  if (asset.state === 'failed') return el('span', { class: 'badge badge-failed' }, 'Failed');
  return asset.duration ? el('span', { class: 'badge' }, formatTime(asset.duration)) : null;
}

/** A private asset (it plays from signed URLs, for a user holding a key). */
function lock(asset) {
  if (asset.access !== 'private') return null;
  return el('span', { class: 'badge badge-lock', title: 'Private: plays only from a signed URL' },
    icon('lock'), 'Private');
}

function card(asset, onSelect) {
  const playable = asset.state !== 'failed';
  const kind = asset.kind === 'video' ? 'Video' : 'Audio';
  return el('li', { class: 'card-item' },
    el('button', {
      class: 'card', type: 'button', disabled: !playable,
      dataset: { assetId: asset.id, access: asset.access || 'public' },
      'aria-label': `Play ${asset.title || asset.id}${asset.state === 'live' ? ' (live)' : ''}${asset.access === 'private' ? ' (private)' : ''}`,
      onclick: () => onSelect(asset),
    },
      el('div', { class: 'card-art' }, artwork(asset), badge(asset), lock(asset),
        el('span', { class: 'card-play' }, icon('play'))),
      el('div', { class: 'card-body' },
        el('h3', { class: 'card-title' }, asset.title || asset.id),
        el('p', { class: 'card-meta' },
          el('span', { class: `kind kind-${asset.kind}` }, kind),
          asset.created ? ` · ${formatDate(asset.created)}` : ''))));
}

export function renderGallery(container, assets, onSelect) {
  container.replaceChildren();
  if (!assets.length) {
    container.append(el('div', { class: 'empty' },
      el('div', { class: 'empty-icon' }, icon('wave')),
      el('h3', {}, 'No assets yet'),
      el('p', {}, 'Package a file and it will appear here:'),
      el('pre', {}, el('code', {}, 'sori package talk.wav --title "My talk"')),
      el('p', { class: 'muted' }, 'or upload one with POST /v1/assets.')));
    return;
  }
  container.append(el('ul', { class: 'grid' }, assets.map((a) => card(a, onSelect))));
}

export function markCurrent(container, id) {
  for (const node of container.querySelectorAll('.card')) {
    if (node.dataset.assetId === id) node.setAttribute('aria-current', 'true');
    else node.removeAttribute('aria-current');
  }
}

export function renderGalleryError(container, message, onRetry) {
  container.replaceChildren(el('div', { class: 'empty' },
    el('div', { class: 'empty-icon' }, icon('alert')),
    el('h3', {}, 'The library could not be loaded'),
    el('p', {}, message),
    el('button', { class: 'btn', type: 'button', onclick: onRetry }, 'Try again')));
}
