/* KAM's own behaviour on top of Bootstrap and htmx. No inline handlers, so a strict
   Content-Security-Policy can forbid inline script later. */
document.addEventListener("change", function (event) {
  var field = event.target;
  if (field.matches && field.matches("[data-autosubmit]") && field.form) {
    field.form.requestSubmit ? field.form.requestSubmit() : field.form.submit();
  }
});
