package app

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dealsync/dealsync/connectors"
)

// A custom trigger that reads deal fields a thin webhook does not carry
// (HubSpot, Pipedrive, Salesforce send the deal's id and stage; the run
// reads the deal later) sees them empty in production: every won deal is
// answered 200 "skipped", silently. The warning names the connection, the
// mapping, the expression, the fields read and why; a trigger kept to the
// stage fields and the deal.raw keys the webhooks carry (Pipedrive's
// pipeline_id, not its custom fields), the built-in trigger, a source whose
// webhooks carry the deal (generic), and Salesforce's deal.name, which
// its outbound messages carry, are not warned about.
func TestThinTriggerWarnings(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string { return writeIn(t, dir, name, content) }
	files := []string{
		write("amount.yaml", "name: amount\ntrigger: is_won(deal.stage) && deal.amount > 100\n"),
		write("company.yaml", "name: company\ntrigger: |\n  is_won(deal.stage)\n    && deal.company.name != \"\" && len(deal.line_items[0].sku) > 0\n"),
		write("named.yaml", "name: named\ntrigger: is_won(deal.stage) && deal.name != \"\"\n"),
		write("stage.yaml", "name: stage\ntrigger: is_won(deal.stage) && !is_won(deal.previous_stage) && deal.raw.pipeline_id == \"1\" && deal.id != \"\"\n"),
		write("plain.yaml", "name: plain\ninvoice:\n  memo: deal.name\n"),
		write("custom.yaml", "name: custom\ntrigger: 'is_won(deal.stage) && fromJSON(deal.raw[\"custom_fields\"])[\"rate\"] > 0.1'\n"),
	}
	// A target each: connections that list one CRM account and invoice it
	// into one target are refused (each would invoice its deals).
	var targets string
	conn := func(name, mapping, source string) string {
		targets += fmt.Sprintf("  erp-%s: {type: http, base_url: \"https://erp.example.com/api\"}\n", name)
		return fmt.Sprintf("  %s:\n    target: erp-%s\n    mapping: %q\n    trigger: {won_stages: [won]}\n    source: %s\n", name, name, mapping, source)
	}
	const (
		pipedrive  = `{type: pipedrive, webhook_user: dealsync, webhook_password: correct-horse, accounts: {"6083095": {api_token: t}}}`
		hubspot    = `{type: hubspot, client_secret: hs-secret, accounts: {"62515": {access_token: pat}}}`
		salesforce = `{type: salesforce, endpoint_token: tok, accounts: {"00D5w000004qGTOEA2": {instance_url: "https://a.my.salesforce.com", client_id: c, client_secret: s}}}`
		generic    = `{type: generic, secret: whsec_ZGVhbHN5bmMtdGVzdC1zZWNyZXQtb2YtMzItYnl0ZXM=}`
	)
	conns := conn("pd-amount", "amount", pipedrive) + conn("hs-amount", "amount", hubspot) + conn("sf-amount", "amount", salesforce) +
		conn("generic-amount", "amount", generic) +
		conn("pd-company", "company", pipedrive) +
		conn("hs-named", "named", hubspot) + conn("sf-named", "named", salesforce) +
		conn("pd-stage", "stage", pipedrive) + conn("hs-stage", "stage", hubspot) + conn("sf-stage", "stage", salesforce) +
		conn("pd-plain", "plain", pipedrive) + conn("hs-builtin", "", hubspot) + conn("pd-custom", "custom", pipedrive)
	yaml := fmt.Sprintf("intake: {public_base_url: \"https://hooks.example.com\"}\nmappings: {files: [%s], reload_interval: 0}\ntargets:\n%sconnections:\n",
		strings.Join(files, ", "), targets) + conns
	_, set := loadAndBuild(t, write("dealsync.yaml", yaml))
	// The connections warned about, with what the warning must say.
	want := map[string][]string{
		"pd-amount":  {"connection pd-amount: the trigger of mapping \"amount\", `is_won(deal.stage) && deal.amount > 100`, reads deal.amount,", "pipedrive source's webhooks do not carry", "thin", "200 \"skipped\"", "never invoiced", "mapping test --connection pd-amount --fetch"},
		"hs-amount":  {"reads deal.amount,", "hubspot source's webhooks"},
		"sf-amount":  {"reads deal.amount,", "salesforce source's webhooks", "deal.name"},
		"pd-company": {"`is_won(deal.stage) && deal.company.name != \"\" && len(deal.line_items[0].sku) > 0`", "reads deal.company.name, deal.line_items,", "sees them empty"},
		"hs-named":   {"reads deal.name,"},
		// A raw key its webhooks do not carry (Pipedrive's do carry the
		// pipeline_id, HubSpot's not), and a Pipedrive deal's custom
		// fields, which only the run reads.
		"hs-stage":  {`reads deal.raw["pipeline_id"], which the hubspot source's webhooks do not carry`, "deal.raw's subscriptionType, propertyName"},
		"pd-custom": {`reads deal.raw["custom_fields"], which the pipedrive source's webhooks do not carry`, "deal.raw's stage_id, pipeline_id"},
	}
	if n := len(set.Names()); n != 13 {
		t.Fatalf("%d connections built, want the 13 of the config: %v", n, set.Names())
	}
	for _, name := range set.Names() {
		c, _ := set.Get(name)
		checkOneWarning(t, name, ThinTriggerWarnings(c), want[name])
	}
}

// A mapping that reads a deal.raw key its Salesforce fetch does not select
// reads "" from every deal: the warning names the connection, the mapping,
// the key and the setting that adds it. Keys the fetch selects (its own
// fields, a relationship's parent, an extra field as configured or in the
// org's spelling) are not warned about. HubSpot's fetch reads the
// properties it asks for (fetch.extra_deal_properties adds some);
// Pipedrive's keeps a few ids and its custom fields, under one key: a
// warning says how to read one. A source without a fixed set (generic)
// is not warned about.
func TestRawFieldWarnings(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string { return writeIn(t, dir, name, content) }
	files := []string{
		write("raw.yaml", "name: raw\ninvoice:\n  memo: 'deal.raw[\"PO_Number__c\"] + deal.raw[\"RecordTypeId\"] + deal.raw.StageName + deal.raw[\"Account\"] + deal.raw[\"owner.email\"] + deal.raw[\"Owner.Email\"] + deal.raw[\"Owner\"] + deal.raw[\"po_number__c\"] + deal.raw[\"Account.Name\"] + deal.raw[\"CurrencyIsoCode\"]'\n"),
	}
	const salesforce = `{type: salesforce, endpoint_token: tok, fetch: {extra_fields: [PO_Number__c, Owner.Email]}, accounts: {"00D5w000004qGTOEA2": {instance_url: "https://a.my.salesforce.com", client_id: c, client_secret: s}}}`
	const pipedrive = `{type: pipedrive, webhook_user: dealsync, webhook_password: correct-horse, accounts: {"6083095": {api_token: t}}}`
	yaml := fmt.Sprintf("mappings: {files: [%s], reload_interval: 0}\ntargets:\n  erp: {type: http, base_url: \"https://erp.example.com/api\"}\nconnections:\n"+
		"  sf:\n    target: erp\n    mapping: raw\n    source: %s\n  pd:\n    target: erp\n    mapping: raw\n    source: %s\n", files[0], salesforce, pipedrive)
	_, set := loadAndBuild(t, write("dealsync.yaml", yaml))
	sf, _ := set.Get("sf")
	// Warned: a field not selected, a key spelt otherwise than the
	// extra field it stands for (deal.raw is case-sensitive), and a
	// relationship field of the base selection, which is inside
	// deal.raw["Account"], not a key of its own.
	got := rawFieldWarnings(sf)
	want := []string{"Account.Name", "RecordTypeId", "owner.email"}
	if len(got) != len(want) {
		t.Fatalf("salesforce: %q; want warnings of %v", got, want)
	}
	for i, key := range want {
		if !strings.Contains(got[i], fmt.Sprintf(`connection sf: mapping "raw" reads deal.raw[%q], which its salesforce source does not read`, key)) ||
			!strings.Contains(got[i], "add "+key+" to connections.sf.source.fetch.extra_fields") {
			t.Errorf("salesforce warning %d: %q; want one of %s", i, got[i], key)
		}
	}
	pd, _ := set.Get("pd")
	if got := rawFieldWarnings(pd); len(got) != 10 || !strings.Contains(got[0], `connection pd: mapping "raw" reads deal.raw["Account"], which its pipedrive source does not read`) ||
		!strings.Contains(got[0], `its deal.raw has stage_id, pipeline_id, org_id, custom_fields, is_archived, archive_time only (a custom field is fromJSON(deal.raw["custom_fields"])["<its 40-character API key>"])`) {
		t.Errorf("pipedrive: %q; want each of the 10 keys warned of, with where its custom fields are", got)
	}

	files = append(files, write("hs.yaml", "name: hs\ninvoice:\n  memo: 'deal.raw[\"dealname\"] + deal.raw[\"po_number\"] + deal.raw[\"hs_object_id\"] + deal.raw[\"vat\"] + deal.raw[\"custom_fields\"] + deal.raw[\"stage_id\"]'\n"))
	const hubspot = `{type: hubspot, client_secret: s, fetch: {extra_deal_properties: [po_number]}, accounts: {"62515": {access_token: t}}}`
	yaml = fmt.Sprintf("mappings: {files: [%s, %s], reload_interval: 0}\ntargets:\n  erp: {type: http, base_url: \"https://erp.example.com/api\"}\nconnections:\n"+
		"  hs:\n    target: erp\n    mapping: hs\n    source: %s\n  pd:\n    target: erp\n    mapping: hs\n    source: %s\n"+
		"  shop:\n    target: erp\n    mapping: hs\n    source: {type: generic, secret: \"whsec_c2hvcC1zZWNyZXQtZm9yLWEtdGVzdC0zMmJ5dGVz\"}\n",
		files[0], files[1], hubspot, pipedrive)
	_, set = loadAndBuild(t, write("dealsync2.yaml", yaml))
	hs, _ := set.Get("hs")
	got = rawFieldWarnings(hs)
	want = []string{"custom_fields", "stage_id", "vat"}
	if len(got) != len(want) {
		t.Fatalf("hubspot: %q; want warnings of %v", got, want)
	}
	for i, key := range want {
		if !strings.Contains(got[i], fmt.Sprintf(`connection hs: mapping "hs" reads deal.raw[%q], which its hubspot source does not read`, key)) ||
			!strings.Contains(got[i], "add "+key+" to connections.hs.source.fetch.extra_deal_properties") {
			t.Errorf("hubspot warning %d: %q; want one of %s", i, got[i], key)
		}
	}
	pd, _ = set.Get("pd")
	if got := strings.Join(rawFieldWarnings(pd), "\n"); strings.Count(got, "connection pd:") != 4 ||
		strings.Contains(got, `deal.raw["custom_fields"], which`) || strings.Contains(got, `deal.raw["stage_id"], which`) {
		t.Errorf("pipedrive: %s\nwant dealname, hs_object_id, po_number and vat warned of, not its own keys", got)
	}
	if shop, _ := set.Get("shop"); len(rawFieldWarnings(shop)) != 0 {
		t.Errorf("generic: %q; want none (its deals carry what the sender sends)", rawFieldWarnings(shop))
	}
}

// The source types whose webhooks are thin say how one looks without
// being built (connectors.SourceSpec.WebhookDeal), so that a dry run
// without their credentials judges the trigger as the intake does; the
// generic source's webhooks carry whole deals.
func TestThinSourceTypesShapeWebhooksUnbuilt(t *testing.T) {
	thin := map[string]bool{"hubspot": true, "pipedrive": true, "salesforce": true}
	for _, name := range connectors.SourceNames() {
		spec, _ := connectors.LookupSource(name)
		if (spec.WebhookDeal != nil) != thin[name] {
			t.Errorf("source %s: WebhookDeal set %v, want %v", name, spec.WebhookDeal != nil, thin[name])
		}
	}
}

// A mapping that reads a company's email or tax id from a source that
// leaves it empty until a setting names the CRM's field (HubSpot,
// Salesforce, Pipedrive have no standard one) reads "" from every deal:
// the warning names the field and the setting. With the setting, or
// from a generic source, nothing is said.
func TestCompanyFieldWarnings(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string { return writeIn(t, dir, name, content) }
	m := write("co.yaml", "name: co\ninvoice:\n  customer:\n    tax_id: deal.company.tax_id\n    email: deal.company.email\n")
	yaml := fmt.Sprintf("mappings: {files: [%s], reload_interval: 0}\ntargets:\n  erp: {type: http, base_url: \"https://erp.example.com/api\"}\nconnections:\n"+
		"  hs:\n    target: erp\n    mapping: co\n    source: {type: hubspot, client_secret: s, fetch: {company_email_property: email}, accounts: {\"62515\": {access_token: t}}}\n"+
		"  pd:\n    target: erp\n    mapping: co\n    source: {type: pipedrive, webhook_user: dealsync, webhook_password: correct-horse, accounts: {\"6083095\": {api_token: t}}}\n"+
		"  shop:\n    target: erp\n    mapping: co\n    source: {type: generic, secret: \"whsec_c2hvcC1zZWNyZXQtZm9yLWEtdGVzdC0zMmJ5dGVz\"}\n", m)
	_, set := loadAndBuild(t, write("dealsync.yaml", yaml))
	hs, _ := set.Get("hs")
	if got := companyFieldWarnings(hs); len(got) != 1 || !strings.Contains(got[0],
		`connection hs: mapping "co" reads deal.company.tax_id, which its hubspot source leaves empty: it is "" for every deal; set connections.hs.source.fetch.company_tax_id_property`) {
		t.Errorf("hubspot: %q; want the tax id warned of (the email property is set)", got)
	}
	pd, _ := set.Get("pd")
	if got := strings.Join(companyFieldWarnings(pd), "\n"); !strings.Contains(got, "deal.company.email, which its pipedrive source leaves empty") ||
		!strings.Contains(got, "connections.pd.source.fetch.organization_tax_id_field") {
		t.Errorf("pipedrive: %s; want both warned of", got)
	}
	shop, _ := set.Get("shop")
	if got := companyFieldWarnings(shop); len(got) != 0 {
		t.Errorf("generic: %q; want none", got)
	}
}

// The warnings follow the mapping's reads through let variables and get()
// with a literal key: a trigger that reads the company's name through an
// alias, or a Pipedrive custom field with get(), is warned of as one that
// reads it directly; so is a company field read through an alias, for a
// source that leaves it empty.
func TestWarningsFollowReadsThroughLetVariablesAndGet(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string { return writeIn(t, dir, name, content) }
	files := []string{
		write("alias.yaml", "name: alias\ntrigger: 'let c = deal.company; is_won(deal.stage) && c.name != \"\"'\n"+
			"invoice:\n  customer:\n    tax_id: 'let c = deal.company; c.tax_id'\n"),
		write("get.yaml", "name: get\ntrigger: 'is_won(deal.stage) && get(deal.raw, \"custom_fields\") != \"\"'\n"),
	}
	// A target each: one company on two connections into one target is
	// refused.
	conn := func(name, mapping string) string {
		return fmt.Sprintf("  %s:\n    target: erp-%s\n    mapping: %q\n    trigger: {won_stages: [won]}\n    source: {type: pipedrive, webhook_user: dealsync, webhook_password: correct-horse, accounts: {\"6083095\": {api_token: t}}}\n", name, name, mapping)
	}
	yaml := fmt.Sprintf("intake: {public_base_url: \"https://hooks.example.com\"}\nmappings: {files: [%s], reload_interval: 0}\ntargets:\n"+
		"  erp-pd-alias: {type: http, base_url: \"https://erp.example.com/api\"}\n  erp-pd-get: {type: http, base_url: \"https://erp.example.com/api\"}\nconnections:\n",
		strings.Join(files, ", ")) + conn("pd-alias", "alias") + conn("pd-get", "get")
	_, set := loadAndBuild(t, write("dealsync.yaml", yaml))
	alias, _ := set.Get("pd-alias")
	if got := ThinTriggerWarnings(alias); len(got) != 1 || !strings.Contains(got[0], "reads deal.company.name, which the pipedrive source's webhooks do not carry") {
		t.Errorf("a trigger reading the company's name through a let variable: %q", got)
	}
	if got := strings.Join(companyFieldWarnings(alias), "\n"); !strings.Contains(got, `mapping "alias" reads deal.company.tax_id, which its pipedrive source leaves empty`) {
		t.Errorf("a tax id read through a let variable: %q", got)
	}
	get, _ := set.Get("pd-get")
	if got := ThinTriggerWarnings(get); len(got) != 1 || !strings.Contains(got[0], `reads deal.raw["custom_fields"], which the pipedrive source's webhooks do not carry`) {
		t.Errorf("a trigger reading a custom field with get(): %q", got)
	}
}

// The built-in mapping (mapping: "") copies the company's email and tax
// id into the customer: a source that leaves them empty for want of a
// setting is warned of as for a mapping file that reads them.
func TestCompanyFieldWarningsOfTheBuiltinMapping(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string { return writeIn(t, dir, name, content) }
	yaml := "targets:\n  erp: {type: http, base_url: \"https://erp.example.com/api\"}\nconnections:\n" +
		"  hs:\n    target: erp\n    mapping: \"\"\n    source: {type: hubspot, client_secret: s, fetch: {company_email_property: email}, accounts: {\"62515\": {access_token: t}}}\n" +
		"  pd:\n    target: erp\n    source: {type: pipedrive, webhook_user: dealsync, webhook_password: correct-horse, accounts: {\"6083095\": {api_token: t}}}\n"
	_, set := loadAndBuild(t, write("dealsync.yaml", yaml))
	hs, _ := set.Get("hs")
	if got := companyFieldWarnings(hs); len(got) != 1 || !strings.Contains(got[0],
		`connection hs: the built-in mapping (mapping: "") reads deal.company.tax_id, which its hubspot source leaves empty: it is "" for every deal; set connections.hs.source.fetch.company_tax_id_property`) {
		t.Errorf("hubspot: %q; want the tax id warned of (the email property is set)", got)
	}
	pd, _ := set.Get("pd")
	if got := strings.Join(companyFieldWarnings(pd), "\n"); !strings.Contains(got, `the built-in mapping (mapping: "") reads deal.company.email, which its pipedrive source leaves empty`) ||
		!strings.Contains(got, "connections.pd.source.fetch.organization_tax_id_field") {
		t.Errorf("pipedrive: %s; want both warned of", got)
	}
}

// A company field read by the default expression of a field the mapping
// does not write (customer.email's deal.company.email) is warned of as
// one the file reads, saying where the read comes from: the file does not
// show it. A field the file writes itself is warned of as before.
func TestCompanyFieldWarningsNameTheDefaultExpression(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string { return writeIn(t, dir, name, content) }
	m := write("memo.yaml", "name: memo\ninvoice:\n  memo: deal.name\n  customer:\n    tax_id: deal.company.tax_id\n")
	yaml := fmt.Sprintf("mappings: {files: [%s], reload_interval: 0}\ntargets:\n  erp: {type: http, base_url: \"https://erp.example.com/api\"}\nconnections:\n"+
		"  pd:\n    target: erp\n    mapping: memo\n    source: {type: pipedrive, webhook_user: dealsync, webhook_password: correct-horse, accounts: {\"6083095\": {api_token: t}}}\n", m)
	_, set := loadAndBuild(t, write("dealsync.yaml", yaml))
	pd, _ := set.Get("pd")
	got := strings.Join(companyFieldWarnings(pd), "\n")
	if !strings.Contains(got, `connection pd: mapping "memo" reads deal.company.email (in the default expression of invoice.customer.email, which the mapping does not write), which its pipedrive source leaves empty`) ||
		!strings.Contains(got, `mapping "memo" reads deal.company.tax_id, which its pipedrive source leaves empty`) {
		t.Errorf("pipedrive: %s\nwant the email's read named as the default expression's, the tax id's as the file's", got)
	}
}
