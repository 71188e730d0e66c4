#!/usr/bin/env bash
# One inspection's lifecycle against a running `saoma serve`, with curl — the README's
# walk-through as a script (the end-to-end tests run it, so it stays true).
# Run it in the folder where `saoma serve` runs (it reads saoma-data/keys/admin.token).
set -euo pipefail
BASE=${BASE:-http://127.0.0.1:8080}
SAOMA=${SAOMA:-saoma}
ADMIN=${SAOMA_ADMIN_TOKEN:-$(cat saoma-data/keys/admin.token)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
json() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" | head -n 1; }

# 1. An officer's device makes its key pair (the private key stays on the device).
"$SAOMA" device keygen --out "$work/wang.key" > "$work/wang.pub"
PUBKEY=$(json public_key < "$work/wang.pub")

# 2. The administrator registers an agency, an item, an enterprise and two officers with keys.
curl -sf -H "Authorization: Bearer $ADMIN" -H 'content-type: text/csv' \
  --data-binary $'code,name,level,region,domain\nZZ-SCJ,株洲市市场监督管理局,city,430200,market_regulation\n' \
  "$BASE/api/v1/admin/import/agencies"; echo
curl -sf -H "Authorization: Bearer $ADMIN" -H 'content-type: text/csv' \
  --data-binary $'code,name,legal_basis,domain\nSC-SP-001,食品经营许可事项检查,《中华人民共和国食品安全法》第一百一十条,food_drug\n' \
  "$BASE/api/v1/admin/import/items"; echo
curl -sf -H "Authorization: Bearer $ADMIN" -H 'content-type: text/csv' \
  --data-binary $'credit_code,name,region,credit_grade,status\n91430200MA4L7G1X02,株洲华创食品有限公司,430200,A,active\n' \
  "$BASE/api/v1/admin/import/enterprises"; echo
curl -sf -H "Authorization: Bearer $ADMIN" -H 'content-type: text/csv' \
  --data-binary "certificate_no,badge_no,name,agency,phone,public_key
ZF43020000001,,王海,ZZ-SCJ,,$PUBKEY
ZF43020000002,,李娜,ZZ-SCJ,,
" "$BASE/api/v1/admin/import/officers"; echo

# 3. The officer asks for a code for today (an unplanned inspection after a complaint).
ID=$(cat /proc/sys/kernel/random/uuid)
TODAY=$(TZ=Asia/Shanghai date +%F)
sleep 1 # a key cannot sign anything dated before its registration
echo "{\"type\":\"IssueCode\",\"inspection_id\":\"$ID\",
  \"kind\":{\"kind\":\"unplanned\",\"trigger\":\"complaint\",\"basis\":\"12315投诉：销售过期食品\"},
  \"agency\":\"ZZ-SCJ\",\"enterprise\":\"91430200MA4L7G1X02\",\"items\":[\"SC-SP-001\"],
  \"officers\":[\"ZF43020000001\",\"ZF43020000002\"],\"date\":\"$TODAY\"}" |
  "$SAOMA" device sign --key "$work/wang.key" --officer ZF43020000001 > "$work/issue.json"
curl -sf -H 'content-type: application/json' --data @"$work/issue.json" "$BASE/api/v1/commands" | tee "$work/issued.json"; echo
TOKEN=$(json token < "$work/issued.json")

# 4. At the door the officer shows the code (亮码); the enterprise scans it (扫码) and sees
#    who comes and why.
echo "{\"type\":\"ShowCode\",\"inspection_id\":\"$ID\"}" |
  "$SAOMA" device sign --key "$work/wang.key" --officer ZF43020000001 > "$work/show.json"
curl -sf -H 'content-type: application/json' --data @"$work/show.json" "$BASE/api/v1/commands"; echo
curl -sf -X POST "$BASE/api/v1/codes/$TOKEN/scan"; echo

# 5. The officer reports the result; the enterprise rates the visit (once).
echo "{\"type\":\"ReportResult\",\"inspection_id\":\"$ID\",\"outcome\":{\"outcome\":\"no_problems\"}}" |
  "$SAOMA" device sign --key "$work/wang.key" --officer ZF43020000001 > "$work/result.json"
curl -sf -H 'content-type: application/json' --data @"$work/result.json" "$BASE/api/v1/commands"; echo
curl -sf -H 'content-type: application/json' --data '{"level":5,"comment":"检查规范"}' \
  "$BASE/api/v1/codes/$TOKEN/rating"; echo

# 6. The supervision bureau reads the trace: every hash, link and signature checked.
curl -sf -H "Authorization: Bearer $ADMIN" "$BASE/api/v1/admin/inspections/$ID/events" > "$work/trace.json"
grep -o '"verified":[a-z]*' "$work/trace.json"
grep -o '"type":"[A-Za-z]*"' "$work/trace.json" | tr '\n' ' '; echo
