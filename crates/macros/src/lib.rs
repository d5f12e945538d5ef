//! `#[store_op]`: the `db` span every store operation opens, declared once.
//!
//! A store operation's span is an OpenTelemetry client span named
//! `<service> <operation>` with the database's system and the operation's
//! name, and empty fields `db::failed` fills in when the operation fails.
//! Written out, that is a 300-character `#[tracing::instrument]` attribute;
//! this macro writes it from the function's name and the crate's.

use proc_macro::TokenStream;
use quote::{format_ident, quote};
use syn::{Expr, ItemFn, MetaNameValue, Token, parse_macro_input, punctuated::Punctuated};

/// Instruments a store operation with its `db` span.
///
/// ```ignore
/// #[store_op]
/// pub async fn insert_show(&self, …) -> Result<Show, Error> { … }
/// ```
///
/// opens the span `scheduling insert_show` (the crate's name without
/// `caravan-`, then the function's). Arguments, each `name = value`:
/// `prefix = "idempotency"` names the span's first word instead of the
/// crate; `operation = "products"` names the operation instead of the
/// function; `db = expr` is the connection (`&self.db` when not given); any
/// other `name = expr` becomes one more field of the span.
#[proc_macro_attribute]
pub fn store_op(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = parse_macro_input!(args with Punctuated::<MetaNameValue, Token![,]>::parse_terminated);
    let function = parse_macro_input!(item as ItemFn);
    let package = std::env::var("CARGO_PKG_NAME").unwrap_or_default();
    let mut prefix = package.strip_prefix("caravan-").unwrap_or(&package).to_owned();
    let mut operation = function.sig.ident.to_string();
    let mut db: Expr = syn::parse_quote!(&self.db);
    let mut extra = Vec::new();
    for arg in args {
        if arg.path.is_ident("prefix") || arg.path.is_ident("operation") {
            let Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(text), .. }) = &arg.value else {
                return syn::Error::new_spanned(&arg.value, "a string literal").to_compile_error().into();
            };
            if arg.path.is_ident("prefix") {
                prefix = text.value();
            } else {
                operation = text.value();
            }
        } else if arg.path.is_ident("db") {
            db = arg.value;
        } else {
            let (name, value) = (arg.path, arg.value);
            extra.push(quote!(#name = #value));
        }
    }
    let span_name = format!("{prefix} {operation}");
    let system = if package == "caravan-platform" {
        quote!(crate::db::system)
    } else {
        let platform = format_ident!("caravan_platform");
        quote!(::#platform::db::system)
    };
    quote! {
        #[::tracing::instrument(name = "db", skip_all, fields(
            otel.name = #span_name,
            otel.kind = "client",
            otel.status_description = ::tracing::field::Empty,
            error.type = ::tracing::field::Empty,
            db.response.status_code = ::tracing::field::Empty,
            db.system = #system(#db),
            db.operation.name = #operation,
            chaos.fault = ::tracing::field::Empty
            #(, #extra)*
        ))]
        #function
    }
    .into()
}
