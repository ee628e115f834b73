// The JSON API as the pages call it: same-origin cookies, the CSRF token on every write, and an Error
// carrying the server's reason (and status) when the answer is not 2xx. A 401 means the session ended.
export const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";

export async function api(path, body, fallbackReason = "Error") {
  const init = { credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.method = "POST";
    init.headers["Content-Type"] = "application/json";
    init.headers["X-CSRF-Token"] = csrf;
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = null;
  try {
    data = await response.json();
  } catch {
    // an empty or non-JSON answer: the status says enough
  }
  if (response.status === 401) {
    location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
  }
  if (!response.ok) {
    const error = new Error(data?.error?.reason || fallbackReason);
    error.status = response.status;
    error.data = data?.error ?? null; // e.g. a 409's `duplicates`
    throw error;
  }
  return data;
}
