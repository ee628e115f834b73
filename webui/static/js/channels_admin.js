// Channel administration: the "Copy" buttons beside embed snippets.

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain http (a LAN address): the Clipboard API is not there, the old way still is.
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.append(area);
  area.select();
  try {
    document.execCommand("copy");
  } finally {
    area.remove();
  }
}

for (const button of document.querySelectorAll("button[data-copy]")) {
  const label = button.lastChild.textContent;
  button.addEventListener("click", async () => {
    const source = document.getElementById(button.dataset.copy);
    if (!source) return;
    try {
      await copyText(source.textContent);
      button.lastChild.textContent = button.dataset.copied;
      setTimeout(() => {
        button.lastChild.textContent = label;
      }, 1500);
    } catch {
      window.getSelection()?.selectAllChildren(source); // let the person press Ctrl+C
    }
  });
}
