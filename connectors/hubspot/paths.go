package hubspot

import (
	"net/url"
	"regexp"
)

// The HubSpot CRM API paths the source calls, all in one place.
//
// They are HubSpot's date-versioned APIs, version APIVersion. HubSpot ends
// support for the v4 associations API on 30 March 2027 and for the v3 CRM
// APIs in September 2027, and says to move straight to the date-versioned
// ones; 2026-03 takes the v3/v4 requests and answers with the same shapes
// (HubSpot's public spec collection, PublicApiSpecs/CRM/{Deals,Companies,
// Line Items,Objects,Associations,Properties,Pipelines}/…/2026-03), only
// the paths differ. A date version is itself supported for about 18 months
// after its release: 2026-03 until about September 2027.
//
// Deals are named by their object type id, 0-3, as HubSpot's 2026-03 deals
// spec names every deal path (/crm/objects/2026-03/0-3/{dealId}); the
// generic objects and associations specs take either the id or the name.
// Companies and line items are named as their own specs name them.

// APIVersion is the version of HubSpot's date-versioned CRM APIs the
// source calls.
const APIVersion = "2026-03"

// dealObjectType is the deal's object type id.
const dealObjectType = "0-3"

const (
	objectsPrefix    = "/crm/objects/" + APIVersion + "/"
	propertiesPrefix = "/crm/properties/" + APIVersion + "/"
	pipelinesPrefix  = "/crm/pipelines/" + APIVersion + "/"
)

// dealPath is one deal: GET (read, with associations) and PATCH (write-back).
func dealPath(dealID string) string {
	return objectsPrefix + dealObjectType + "/" + url.PathEscape(dealID)
}

// dealSearchPath is the CRM search of deals (POST).
const dealSearchPath = objectsPrefix + dealObjectType + "/search"

// batchReadPath is the batch read (POST) of objects of one type, by name:
// "companies", "line_items".
func batchReadPath(objectType string) string {
	return objectsPrefix + objectType + "/batch/read"
}

// dealAssociationsPath is a deal's associations with objects of one type
// (GET, paged), the associations API's "retrieve all associations by
// object type".
func dealAssociationsPath(dealID, toObjectType string) string {
	return dealPath(dealID) + "/associations/" + toObjectType
}

// dealPropertyPath is a deal property's definition (GET).
func dealPropertyPath(name string) string {
	return propertiesPrefix + "deals/" + url.PathEscape(name)
}

// dealPipelinesPath is the portal's deal pipelines with their stages (GET).
const dealPipelinesPath = pipelinesPrefix + "deals"

// apiPathInBaseURL matches, in any case, an API path of HubSpot's CRM in
// a base_url (https://api.hubapi.com/crm/v3, as HubSpot's reference
// pages write the v3 endpoints, or …/crm/objects/2026-03): the source adds
// its paths, /crm/…, to base_url, so such a base_url would double them.
// A proxy's own prefix (https://gateway.example/hubspot, even
// …/crm/hubspot) is not matched.
var apiPathInBaseURL = regexp.MustCompile(`(?i)/crm/(v\d+|\d{4}-\d{2}|objects|properties|pipelines|associations)(/|$)`)
