# Thins a metrics.csv (step,name,value,wall_time_s) for committing: a series with more than
# `limit` points is replaced by the means of consecutive blocks of its points (step and value
# averaged, the block's last wall time), at most limit / 2 blocks; other series are kept row by row.
# Two passes over the same file, the first counting each series' points:
#   awk -v limit=2000 -f thin-metrics.awk metrics.csv metrics.csv > thinned.csv
BEGIN { FS = ","; OFS = "," }
function key(   n, i, name) { name = $2; for (i = 3; i <= NF - 2; i++) name = name "," $i; return name }
FNR == 1 { if (NR == 1) next; print; next }
NR == FNR { count[key()]++; next }
{
    name = key()
    if (count[name] <= limit) { print; next }
    if (!(name in size)) size[name] = int((count[name] + limit / 2 - 1) / (limit / 2))
    sumStep[name] += $1; sumValue[name] += $(NF - 1); filled[name]++
    seen[name]++
    if (filled[name] == size[name] || seen[name] == count[name]) {
        printf "%d,%s,%.9g,%s\n", sumStep[name] / filled[name] + 0.5, name, sumValue[name] / filled[name], $NF
        sumStep[name] = 0; sumValue[name] = 0; filled[name] = 0
    }
}
