// Package model is dealsync's canonical data model: the Deal a CRM source
// produces, the Invoice an ERP target consumes, and the exact money and date
// types both use. It knows nothing of Temporal, HTTP or any vendor.
package model
