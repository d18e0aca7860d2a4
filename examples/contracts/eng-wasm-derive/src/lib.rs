//! `#[pub_interface]` and `#[eth_contract]` as eng-wasm had them.
//!
//! `#[pub_interface]` goes on the contract's trait; the implementor is the struct `Contract`.
//! It emits the module's `deploy` and `call` exports: `deploy` decodes the arguments of
//! `construct` (if the trait has one; the callable's name is ignored at deploy), `call`
//! dispatches on the function name, decodes the arguments in order (Ethereum ABI, no selector;
//! `Vec<u8>` as `bytes`), and hands a return value to `ret`, ABI encoded. An unknown name or
//! arguments that do not decode panic, as they did on Discovery.
//!
//! `#[eth_contract("X.json")] struct Name;` reads the Solidity ABI at `X.json` (beside the
//! crate's manifest) and gives `Name::new(address)` and one method per ABI function, which asks
//! for that Ethereum call through the bridge.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::{format_ident, quote};
use syn::{parse_macro_input, FnArg, ItemTrait, Pat, ReturnType, TraitItem, Type};

/// The type an argument is decoded as, and how it becomes the parameter's type.
fn decoded_as(ty: &Type) -> (Tokens, Tokens) {
    let text = quote!(#ty).to_string().replace(' ', "");
    if text == "Vec<u8>" {
        (quote!(::eng_wasm::Bytes), quote!(.to_vec()))
    } else {
        (quote!(#ty), quote!())
    }
}

#[proc_macro_attribute]
pub fn pub_interface(_attr: TokenStream, item: TokenStream) -> TokenStream {
    let input = parse_macro_input!(item as ItemTrait);
    let trait_name = &input.ident;
    let mut arms = Vec::new();
    let mut deploy = quote!();
    for item in &input.items {
        let TraitItem::Fn(f) = item else { continue };
        let name = &f.sig.ident;
        let mut idents = Vec::new();
        let mut decode_types = Vec::new();
        let mut converts = Vec::new();
        for arg in &f.sig.inputs {
            let FnArg::Typed(pt) = arg else { continue };
            let Pat::Ident(id) = &*pt.pat else {
                return syn::Error::new_spanned(&pt.pat, "arguments must be plain names")
                    .to_compile_error()
                    .into();
            };
            let (decoded, convert) = decoded_as(&pt.ty);
            idents.push(id.ident.clone());
            decode_types.push(decoded);
            converts.push(convert);
        }
        let text = name.to_string();
        let decode = quote! {
            let (#(#idents,)*): (#(#decode_types,)*) =
                match <(#(#decode_types,)*) as ::eng_wasm::SolValue>::abi_decode_params(&args) {
                    Ok(v) => v,
                    Err(_) => panic!("could not decode the arguments of `{}`", #text),
                };
            #( let #idents = #idents #converts; )*
        };
        if text == "construct" {
            if !matches!(f.sig.output, ReturnType::Default) {
                return syn::Error::new_spanned(&f.sig.output, "construct returns nothing")
                    .to_compile_error()
                    .into();
            }
            deploy = quote! {
                let args = ::eng_wasm::args();
                #decode
                <Contract as #trait_name>::construct(#(#idents),*);
            };
            continue;
        }
        let call = quote!(<Contract as #trait_name>::#name(#(#idents),*));
        let ret = match &f.sig.output {
            ReturnType::Default => quote!(#call;),
            ReturnType::Type(_, ty) if matches!(**ty, Type::Tuple(_)) => {
                quote!(::eng_wasm::ret(&::eng_wasm::SolValue::abi_encode_params(&#call));)
            }
            ReturnType::Type(..) => {
                quote!(::eng_wasm::ret(&::eng_wasm::SolValue::abi_encode_params(&(#call,)));)
            }
        };
        arms.push(quote! {
            #text => {
                #decode
                #ret
            }
        });
    }
    quote! {
        #input

        #[unsafe(no_mangle)]
        pub extern "C" fn deploy() {
            #deploy
        }

        #[unsafe(no_mangle)]
        pub extern "C" fn call() {
            let name = ::eng_wasm::function_name();
            let args = ::eng_wasm::args();
            match name.as_str() {
                #(#arms)*
                other => panic!("Unknown method called:\"{}\"", other),
            }
        }
    }
    .into()
}

/// The Rust type of a Solidity ABI parameter type.
fn rust_type(sol: &str) -> Option<Tokens> {
    Some(match sol {
        "uint256" | "int256" => quote!(::eng_wasm::U256),
        "address" => quote!(::eng_wasm::Address),
        "bytes32" => quote!(::eng_wasm::H256),
        "bool" => quote!(bool),
        "string" => quote!(::eng_wasm::String),
        "bytes" => quote!(::eng_wasm::Bytes),
        "uint64" => quote!(u64),
        "uint32" => quote!(u32),
        _ => return None,
    })
}

#[proc_macro_attribute]
pub fn eth_contract(attr: TokenStream, item: TokenStream) -> TokenStream {
    let file = parse_macro_input!(attr as syn::LitStr).value();
    let item = parse_macro_input!(item as syn::ItemStruct);
    let name = &item.ident;
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let path = std::path::Path::new(&dir).join(&file);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            let msg = format!("cannot read the ABI {}: {e}", path.display());
            return syn::Error::new_spanned(&item, msg).to_compile_error().into();
        }
    };
    let json: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            return syn::Error::new_spanned(&item, format!("{file} is not JSON: {e}"))
                .to_compile_error()
                .into();
        }
    };
    // A truffle artifact carries the ABI under "abi"; a bare ABI is the array itself.
    let abi = json.get("abi").cloned().unwrap_or(json);
    let mut methods = Vec::new();
    for f in abi.as_array().into_iter().flatten() {
        if f.get("type").and_then(|t| t.as_str()) != Some("function") {
            continue;
        }
        let Some(fname) = f.get("name").and_then(|n| n.as_str()) else { continue };
        let mut params = Vec::new();
        let mut types = Vec::new();
        let mut sol_types = Vec::new();
        let mut supported = true;
        for (i, input) in
            f.get("inputs").and_then(|i| i.as_array()).into_iter().flatten().enumerate()
        {
            let sol = input.get("type").and_then(|t| t.as_str()).unwrap_or_default();
            let Some(ty) = rust_type(sol) else {
                supported = false;
                break;
            };
            params.push(format_ident!("arg{}", i));
            types.push(ty);
            sol_types.push(sol.to_string());
        }
        if !supported {
            continue;
        }
        let signature = format!("{fname}({})", sol_types.join(","));
        let method = format_ident!("{}", fname);
        methods.push(quote! {
            #[allow(non_snake_case)]
            pub fn #method(&self, #(#params: #types),*) {
                let mut data = ::eng_wasm::keccak256(#signature.as_bytes())[..4].to_vec();
                data.extend_from_slice(&::eng_wasm::SolValue::abi_encode_params(&(#(#params,)*)));
                ::eng_wasm::write_ethereum_bridge(&data, &self.addr);
            }
        });
    }
    quote! {
        pub struct #name {
            addr: ::eng_wasm::Address,
        }

        impl #name {
            /// The contract at `address` (hex, with or without `0x`).
            pub fn new(address: &str) -> Self {
                let hex = address.trim_start_matches("0x");
                let addr = <::eng_wasm::Address as core::str::FromStr>::from_str(hex)
                    .unwrap_or_else(|_| panic!("not an Ethereum address: {}", address));
                Self { addr }
            }

            #(#methods)*
        }
    }
    .into()
}
