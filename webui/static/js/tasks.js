// "My tasks" works with plain forms; this only shows due times in the browser's language and time zone
// (the server writes them in UTC) and tells the new-task form which time zone its due time is in.
const lang = document.documentElement.lang || undefined;

for (const time of document.querySelectorAll("time[data-local]")) {
  const date = new Date(time.dateTime);
  if (Number.isNaN(date.getTime())) continue;
  time.title = time.textContent;
  time.textContent = date.toLocaleString(lang, {
    weekday: "short",
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
  });
}

const tz = document.querySelector('#task-create input[name="tz"]');
if (tz) tz.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
