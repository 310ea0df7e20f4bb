(function(){
  document.querySelectorAll("table.sortable").forEach(function(table){
    var heads = table.querySelectorAll("thead th");
    heads.forEach(function(th, col){
      th.addEventListener("click", function(){
        var numeric = th.dataset.type === "num";
        var dir = th.getAttribute("aria-sort") === "descending" ? "ascending"
                : th.getAttribute("aria-sort") === "ascending" ? "descending"
                : (numeric && th.dataset.better === "higher" ? "descending" : "ascending");
        heads.forEach(function(h){ h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir);
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows).map(function(r, i){ return [r, i]; });
        var sign = dir === "ascending" ? 1 : -1;
        rows.sort(function(a, b){
          var ca = a[0].cells[col], cb = b[0].cells[col];
          var va = ca.dataset.value, vb = cb.dataset.value;
          if (numeric) {
            // a missing value, or a cell that is not ranked (a method that did not learn, a reference
            // row, a structural zero), sorts last either way
            var ma = va === undefined || ca.dataset.unranked !== undefined;
            var mb = vb === undefined || cb.dataset.unranked !== undefined;
            if (ma !== mb) return ma ? 1 : -1;
            if (!ma && Number(va) !== Number(vb)) return sign * (Number(va) - Number(vb));
          } else {
            var c = (va || ca.textContent).localeCompare(vb || cb.textContent);
            if (c !== 0) return sign * c;
          }
          return a[1] - b[1];
        });
        rows.forEach(function(p){ body.appendChild(p[0]); });
      });
    });
  });
  // "#sort=w2@1" in the address sorts every summary table by that metric on load (for links and tests).
  var m = /^#sort=(.+)$/.exec(decodeURIComponent(location.hash));
  if (m) {
    var sel = 'table.board thead th[data-metric="' + m[1].replace(/"/g, "") + '"]';
    document.querySelectorAll(sel).forEach(function(th){ th.click(); });
  }
  document.documentElement.dataset.sortReady = "1";
})();
