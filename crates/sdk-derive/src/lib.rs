//! `#[pub_interface]`: turns a contract's public interface into the `deploy` and `call` exports
//! that the enigma runtime runs.
//!
//! On a trait, the generated code dispatches to the trait's implementation by `Contract` (the
//! eng-wasm convention) or by the type named in the attribute, `#[pub_interface(MyContract)]`.
//! On an inherent `impl`, it dispatches to the block's `pub fn`s without a receiver; on a trait
//! `impl`, to all of its functions.
//!
//! - `construct`, if present, runs at deploy with the deploy's arguments; it cannot be called.
//! - Every other function is callable by name. Its parameters are ABI-decoded from the task's
//!   arguments (an argument that does not decode fails the task naming it); its return value is
//!   ABI-encoded as the function's return values (a tuple as several values); a `Result`'s
//!   `Err` fails the task with the error's text.
//! - A function answers read-only queries (free, unrecorded) only if marked `#[query]` (then it
//!   is callable as a task too) or `#[query(only)]` (queries only). Unmarked functions are
//!   tasks only: a query cannot probe them for free.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use syn::{
    FnArg, GenericArgument, Ident, ImplItem, Item, Pat, PathArguments, ReturnType, Signature,
    TraitItem, Type, Visibility, parse_macro_input, spanned::Spanned,
};

/// Generates `deploy` and `call` from a trait or impl block. See the crate docs.
#[proc_macro_attribute]
pub fn pub_interface(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item_tokens = TokenStream2::from(item.clone());
    let parsed = parse_macro_input!(item as Item);
    let target: Option<Type> = if attr.is_empty() {
        None
    } else {
        match syn::parse::<Type>(attr) {
            Ok(ty) => Some(ty),
            Err(e) => return e.to_compile_error().into(),
        }
    };
    match expand(&parsed, target) {
        Ok(exports) => {
            let item = without_query_attributes(parsed);
            quote!(#item #exports).into()
        }
        Err(e) => {
            let error = e.to_compile_error();
            quote!(#item_tokens #error).into()
        }
    }
}

/// How a function may be called.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// As a task only (unmarked).
    Task,
    /// As a task or a query (`#[query]`).
    Both,
    /// As a query only (`#[query(only)]`).
    QueryOnly,
}

fn kind(attrs: &[syn::Attribute]) -> syn::Result<Kind> {
    let Some(attr) = attrs.iter().find(|a| a.path().is_ident("query")) else {
        return Ok(Kind::Task);
    };
    match &attr.meta {
        syn::Meta::Path(_) => Ok(Kind::Both),
        syn::Meta::List(list) => {
            let word: Ident = list.parse_args()?;
            if word == "only" {
                Ok(Kind::QueryOnly)
            } else {
                Err(syn::Error::new(word.span(), "write #[query] or #[query(only)]"))
            }
        }
        syn::Meta::NameValue(nv) => {
            Err(syn::Error::new(nv.span(), "write #[query] or #[query(only)]"))
        }
    }
}

/// The item as written, less the `#[query]` markers (which only this macro reads).
fn without_query_attributes(mut item: Item) -> Item {
    let keep = |a: &syn::Attribute| !a.path().is_ident("query");
    match &mut item {
        Item::Trait(t) => {
            for i in &mut t.items {
                if let TraitItem::Fn(f) = i {
                    f.attrs.retain(keep);
                }
            }
        }
        Item::Impl(i) => {
            for it in &mut i.items {
                if let ImplItem::Fn(f) = it {
                    f.attrs.retain(keep);
                }
            }
        }
        _ => {}
    }
    item
}

struct Method<'a> {
    sig: &'a Signature,
    call_path: TokenStream2,
    kind: Kind,
}

fn expand(item: &Item, target: Option<Type>) -> syn::Result<TokenStream2> {
    let methods: Vec<Method<'_>> = match item {
        Item::Trait(t) => {
            let trait_name = &t.ident;
            let ty = target.unwrap_or_else(|| syn::parse_quote!(Contract));
            t.items
                .iter()
                .filter_map(|i| match i {
                    TraitItem::Fn(f) => Some(f),
                    _ => None,
                })
                .map(|f| {
                    let name = &f.sig.ident;
                    Ok(Method {
                        sig: &f.sig,
                        call_path: quote!(<#ty as #trait_name>::#name),
                        kind: kind(&f.attrs)?,
                    })
                })
                .collect::<syn::Result<_>>()?
        }
        Item::Impl(i) => {
            let ty = &i.self_ty;
            let trait_path = i.trait_.as_ref().map(|(_, path, _)| path);
            i.items
                .iter()
                .filter_map(|item| match item {
                    ImplItem::Fn(f)
                        if trait_path.is_some() || matches!(f.vis, Visibility::Public(_)) =>
                    {
                        Some(f)
                    }
                    _ => None,
                })
                .map(|f| {
                    let name = &f.sig.ident;
                    let call_path = match trait_path {
                        Some(path) => quote!(<#ty as #path>::#name),
                        None => quote!(<#ty>::#name),
                    };
                    Ok(Method { sig: &f.sig, call_path, kind: kind(&f.attrs)? })
                })
                .collect::<syn::Result<_>>()?
        }
        other => {
            return Err(syn::Error::new(
                other.span(),
                "#[pub_interface] goes on a trait (implemented by `Contract`) or on an impl block",
            ));
        }
    };

    let mut deploy_body = quote!();
    let mut arms = Vec::new();
    for method in &methods {
        if let Some(receiver) = method.sig.receiver() {
            return Err(syn::Error::new(
                receiver.span(),
                "contract functions take no `self`: state lives in read_state!/write_state!",
            ));
        }
        let body = call_body(method)?;
        if method.sig.ident == "construct" {
            if method.kind != Kind::Task {
                return Err(syn::Error::new(
                    method.sig.ident.span(),
                    "the constructor runs at deployment; it cannot answer queries",
                ));
            }
            deploy_body = body;
        } else {
            let name = method.sig.ident.to_string();
            let guard = match method.kind {
                Kind::Task => quote! {
                    if __enigma_query {
                        ::enigma_sdk::__private::not_a_query(#name);
                    }
                },
                Kind::Both => quote!(),
                Kind::QueryOnly => quote! {
                    if !__enigma_query {
                        ::enigma_sdk::__private::only_a_query(#name);
                    }
                },
            };
            arms.push(quote!(#name => { #guard #body }));
        }
    }

    Ok(quote! {
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub extern "C" fn deploy() {
            #deploy_body
        }

        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub extern "C" fn call() {
            // Asked once, always: the module imports `enigma_is_query`, which is how the
            // runtime knows it can tell a query from a task.
            let __enigma_query = ::enigma_sdk::__private::is_query();
            let __enigma_name = ::enigma_sdk::__private::function_name();
            match __enigma_name.as_str() {
                #(#arms)*
                _ => ::enigma_sdk::__private::unknown_function(&__enigma_name),
            }
        }
    })
}

/// Decodes the arguments, calls the function and sets the output.
fn call_body(method: &Method<'_>) -> syn::Result<TokenStream2> {
    let mut names = Vec::new();
    let mut idents = Vec::new();
    let mut types = Vec::new();
    for (i, input) in method.sig.inputs.iter().enumerate() {
        let FnArg::Typed(arg) = input else { continue };
        let name = match &*arg.pat {
            Pat::Ident(p) => p.ident.to_string(),
            _ => format!("arg{}", i + 1),
        };
        names.push(name);
        idents.push(format_ident!("__enigma_arg{}", i));
        types.push((*arg.ty).clone());
    }
    let call_path = &method.call_path;

    let decode = if types.is_empty() {
        quote!()
    } else {
        let sol_type = |ty: &Type| quote!(<<#ty as ::enigma_sdk::SolValue>::SolType as ::enigma_sdk::alloy_sol_types::SolType>::SOL_NAME);
        let diagnose = (1..=types.len()).map(|n| {
            let prefix = &types[..n];
            let ty = &types[n - 1];
            let name = &names[n - 1];
            let sol = sol_type(ty);
            quote! {
                if let Err(e) = <(#(#prefix,)*) as ::enigma_sdk::SolValue>::abi_decode_params(&__enigma_args) {
                    ::enigma_sdk::__private::bad_argument(#n, #name, #sol, &e);
                }
            }
        });
        let all_sol = types.iter().map(sol_type);
        quote! {
            let __enigma_args = ::enigma_sdk::__private::args();
            let (#(#idents,)*) = match <(#(#types,)*) as ::enigma_sdk::SolValue>::abi_decode_params_validate(&__enigma_args) {
                Ok(v) => v,
                Err(__enigma_error) => {
                    #(#diagnose)*
                    let expected: &[&str] = &[#(#all_sol),*];
                    ::enigma_sdk::__private::bad_arguments(&expected.join(","), &__enigma_error)
                }
            };
        }
    };

    let call = quote!(#call_path(#(#idents),*));
    let output = match &method.sig.output {
        ReturnType::Default => quote!(#call;),
        ReturnType::Type(_, ty) => match result_ok_type(ty) {
            Some(ok) => {
                let encode = encode_value(ok, &Ident::new("__enigma_ok", Span::call_site()));
                quote! {
                    match #call {
                        Ok(__enigma_ok) => { #encode }
                        Err(__enigma_err) => ::enigma_sdk::__private::contract_error(&__enigma_err),
                    }
                }
            }
            None => {
                let encode = encode_value(ty, &Ident::new("__enigma_out", Span::call_site()));
                quote! {
                    let __enigma_out = #call;
                    #encode
                }
            }
        },
    };
    Ok(quote!(#decode #output))
}

/// The `T` of a `Result<T, E>` return type, if it is one.
fn result_ok_type(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else { return None };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

/// Sets the output to `value` ABI-encoded as return values: a tuple as several, anything else as
/// one, `()` as nothing.
fn encode_value(ty: &Type, value: &Ident) -> TokenStream2 {
    match ty {
        Type::Tuple(t) if t.elems.is_empty() => quote!(let _ = #value;),
        Type::Tuple(_) => {
            quote!(::enigma_sdk::ret(&::enigma_sdk::SolValue::abi_encode_params(&#value));)
        }
        _ => quote!(::enigma_sdk::ret(&::enigma_sdk::SolValue::abi_encode_params(&(#value,)));),
    }
}
