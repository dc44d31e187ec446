// The checkout console's only script, served by klubb (no CDN). The server validates everything it receives;
// this only saves the cashier typing and taps:
// - the purchase total adds itself up from the lines' amounts;
// - the points the purchase will earn are asked of the server (loyalty's preview) and shown before recording;
// - a submitted form's buttons are disabled, so a double tap sends one request (the server's idempotency keys
//   make a second one harmless anyway).
"use strict";

(function () {
  const form = document.getElementById("purchase-form");
  if (form) {
    const exponent = Number(form.dataset.exponent || "2");
    const total = form.querySelector("#purchase-total");
    const preview = document.getElementById("purchase-preview");
    const amounts = Array.from(form.querySelectorAll("input[name^='amount']"));

    // Minor units of a typed amount ("12.50", "12,50"), or null if it is not one.
    const minor = (text) => {
      const clean = text.trim().replace(",", ".");
      if (!/^\d+(\.\d*)?$/.test(clean)) return null;
      const [whole, fraction = ""] = clean.split(".");
      if (fraction.length > exponent) return null;
      return Number(whole) * 10 ** exponent + Number(fraction.padEnd(exponent, "0") || "0");
    };

    const addUp = () => {
      let sum = 0;
      for (const input of amounts) {
        if (!input.value.trim()) continue;
        const value = minor(input.value);
        if (value === null) return; // leave the total alone: the server will say what is wrong
        sum += value;
      }
      total.value = exponent ? (sum / 10 ** exponent).toFixed(exponent) : String(sum);
    };

    let timer = null;
    let asked = 0;
    const askPreview = () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const question = ++asked;
        if (!amounts.some((input) => input.value.trim())) {
          preview.textContent = "";
          return;
        }
        try {
          const response = await fetch(form.dataset.preview, { method: "POST", body: new FormData(form) });
          const answer = await response.json();
          if (question !== asked) return; // a newer question is on its way
          preview.textContent = answer.text;
          preview.classList.toggle("error", !answer.ok);
        } catch (error) {
          preview.textContent = "";
        }
      }, 250);
    };

    form.addEventListener("input", (event) => {
      if (event.target.name && event.target.name.startsWith("amount")) addUp();
      askPreview();
    });
  }

  for (const each of document.querySelectorAll("form")) {
    // After the submit event the browser has taken the form's data: disabling now keeps the pressed button's value.
    each.addEventListener("submit", () => {
      setTimeout(() => each.querySelectorAll("button").forEach((button) => (button.disabled = true)), 0);
    });
  }
})();
