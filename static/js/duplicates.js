// The distance slider mirrors the number field, which alone is submitted; without scripts
// the slider stays hidden and the number field works by itself.
document.addEventListener("DOMContentLoaded", () => {
  const slider = document.getElementById("distance-slider");
  const field = document.getElementById("id_distance");
  if (!slider || !field) return;
  slider.hidden = false;
  if (field.value === "") field.value = slider.value;
  slider.addEventListener("input", () => { field.value = slider.value; });
  field.addEventListener("input", () => { slider.value = field.value; });
});
