pub mod assignor;
