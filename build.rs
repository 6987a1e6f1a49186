//! The migrations are embedded in the binary (`sqlx::migrate!`): a migration added or changed must
//! rebuild it, which cargo does not know by itself.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
