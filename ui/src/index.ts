// The bundle's entry point (app.js, app.css): starts the app.

import "./app.css";
import { start } from "./main";

start();
