fn main() {
    println!("check");
}
