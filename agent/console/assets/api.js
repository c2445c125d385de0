// The console's API: JSON with the session's CSRF token on every POST.
let csrf = '';

export function setCSRF(token) { csrf = token; }

async function check(res) {
  if (res.ok) return res;
  let msg = res.status + ' ' + res.statusText;
  try { msg = (await res.json()).error || msg; } catch (e) { /* not JSON */ }
  throw new Error(msg);
}

export async function get(path) {
  return (await check(await fetch(path, { credentials: 'same-origin' }))).json();
}

export async function post(path, body) {
  const res = await fetch(path, {
    method: 'POST', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
    body: JSON.stringify(body || {}),
  });
  return check(res);
}

// image fetches a JPEG (GET or POST) and returns an object URL.
export async function image(path, body) {
  const res = body === undefined
    ? await check(await fetch(path, { credentials: 'same-origin' }))
    : await post(path, body);
  return URL.createObjectURL(await res.blob());
}
